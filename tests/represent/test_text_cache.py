"""The on-disk embedding cache: a second run encodes nothing, keys separate encoders and texts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from socialrec.represent.cache import EmbeddingCache, cached_encode, default_cache_dir


class CountingEncoder:
    """Deterministic vectors from the text's characters; counts the texts it was asked to encode."""

    def __init__(self, name: str = "counting", dim: int = 8) -> None:
        self.name, self.dim = name, dim
        self.encoded: list[str] = []

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for j, ch in enumerate(t):
                out[i, (ord(ch) + j) % self.dim] += 1.0
        out[:, 0] += 0.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


TEXTS = ["football match", "soccer game", "chocolate cake", "football match", "日本語のテキスト"]


def test_second_call_encodes_nothing(tmp_path) -> None:
    enc = CountingEncoder()
    first = cached_encode(enc, TEXTS, tmp_path)
    assert sorted(enc.encoded) == sorted(set(TEXTS))  # each distinct text once
    np.testing.assert_array_equal(first, enc.encode(TEXTS))
    enc.encoded.clear()
    second = cached_encode(enc, TEXTS, tmp_path)
    assert enc.encoded == []
    np.testing.assert_array_equal(second, first)
    assert second.dtype == np.float32 and second.shape == (5, 8)


def test_only_new_texts_are_encoded(tmp_path) -> None:
    enc = CountingEncoder()
    cached_encode(enc, TEXTS[:2], tmp_path)
    enc.encoded.clear()
    out = cached_encode(enc, ["new text", *TEXTS[:2]], tmp_path)
    assert enc.encoded == ["new text"]
    np.testing.assert_array_equal(out, CountingEncoder().encode(["new text", *TEXTS[:2]]))
    assert EmbeddingCache(tmp_path).count("counting") == 3


def test_encoders_do_not_share_entries(tmp_path) -> None:
    a, b = CountingEncoder("a"), CountingEncoder("b", dim=4)
    cached_encode(a, TEXTS, tmp_path)
    out = cached_encode(b, TEXTS, tmp_path)
    assert len(b.encoded) == 4 and out.shape == (5, 4)
    cache = EmbeddingCache(tmp_path)
    assert cache.count("a") == 4 and cache.count() == 8
    cache.clear("a")
    assert cache.count("a") == 0 and cache.count("b") == 4


def test_empty_input_and_default_directory(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    enc = CountingEncoder()
    assert cached_encode(enc, [], tmp_path).shape == (0, 8)
    monkeypatch.setenv("SOCIALREC_CACHE", str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    cached_encode(enc, ["x"])
    assert (tmp_path / "env" / "embeddings.sqlite3").exists()
    monkeypatch.delenv("SOCIALREC_CACHE")
    assert default_cache_dir().parts[-2:] == (".cache", "socialrec")

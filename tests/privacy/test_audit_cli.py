"""`socialrec audit-membership` and `socialrec evaluate --models mf,dp-mf` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import main


def test_audit_membership_writes_auc_and_interval_per_model(tmp_path: Path) -> None:
    out = tmp_path / "audit.json"
    assert main(["audit-membership", "--dataset", "synthetic", "--models", "pop,itemknn", "--output", str(out),
                 "--bootstrap", "100"]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["models"]) == {"pop", "itemknn"} and doc["protocol"].startswith("random")
    for entry in doc["models"].values():
        lo, hi = entry["ci95"]
        assert 0.0 <= lo <= entry["auc"] <= hi <= 1.0
        assert entry["n_pairs"] > 0 and "auc_popularity" in entry


def test_unknown_model_in_the_audit_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit-membership", "--dataset", "synthetic", "--models", "nope", "--output",
                 str(tmp_path / "a.json")]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_evaluate_knows_mf_and_dp_mf(tmp_path: Path) -> None:
    pytest.importorskip("opacus")
    out = tmp_path / "eval.json"
    assert main(["evaluate", "--dataset", "synthetic", "--models", "mf,dp-mf", "--quick", "--output", str(out)]) == 0
    models = json.loads(out.read_text())["models"]
    assert set(models) == {"mf", "dp-mf"}
    assert models["dp-mf"]["params"] == {} and models["mf"]["ndcg@10"] > 0

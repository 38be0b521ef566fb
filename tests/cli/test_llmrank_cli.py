"""`socialrec evaluate --protocol llmrank` on the real amazon-games files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.cli.main import main

pytestmark = pytest.mark.realdata


def test_llmrank_protocol_from_the_cli(real_amazon_games, real_data: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "llmrank.json"
    rc = main(["--data", str(real_data), "evaluate", "--dataset", "amazon-games", "--protocol", "llmrank",
               "--models", "pop", "--quick", "--output", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    pop = doc["models"]["pop"]
    assert pop["ndcg@10_x100"] == pytest.approx(100 * pop["ndcg@10"], abs=0.01)
    # Popularity is far above random order (22.72) on LLMRank's random candidates.
    assert doc["expected_random_ndcg@10_x100"] == pytest.approx(22.7178, abs=1e-3)
    assert 45 < pop["ndcg@10_x100"] < 60
    assert "NDCG@10 x100" in capsys.readouterr().out


def test_llmrank_refuses_other_datasets(real_data: Path, capsys) -> None:
    rc = main(["--data", str(real_data), "evaluate", "--dataset", "movielens-100k", "--protocol", "llmrank",
               "--models", "pop", "--quick"])
    assert rc == 2 and "amazon-games only" in capsys.readouterr().err

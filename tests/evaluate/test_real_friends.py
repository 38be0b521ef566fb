"""Friend recommendation on the real social graphs: the learned combination must beat
Adamic-Adar by at least 10% NDCG@10 (masked-edges protocol, seed 0)."""

from __future__ import annotations

import pytest

from socialrec.evaluate.friends import run_friend_evaluation
from socialrec.ingest.schema import Dataset

pytestmark = pytest.mark.realdata


@pytest.mark.parametrize("fixture", ["real_lastfm_recbole", "real_ciao_recdiff"])
def test_pymk_beats_adamic_adar(fixture: str, request: pytest.FixtureRequest) -> None:
    dataset: Dataset = request.getfixturevalue(fixture)
    doc = run_friend_evaluation(dataset, ["adamic-adar", "pymk"], ks=(10,), seed=0)
    assert doc["protocol"] == "masked-edges-20" and doc["hidden_edges"] > 1000
    adamic, learned = doc["models"]["adamic-adar"]["ndcg@10"], doc["models"]["pymk"]["ndcg@10"]
    assert adamic > 0.10  # the graph carries real signal
    assert learned >= 1.10 * adamic

"""Private ALS (`dp-als`) and its non-private twin (`als-twin`) run the shared contract (numpy and
scipy only: no torch needed)."""

from __future__ import annotations

from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.dp_als import DPALS
from tests.contracts.recommender_contract import RecommenderContract


class TestDPALS(RecommenderContract):
    # Private ALS (user-level DP item side, each user's vector solved in closed form from their own
    # row: fold_in "solve", exactly what fit computed, so re-folding changes nothing). The block data
    # has 48 users: the contract checks the machinery at a loose budget, as tests/contracts/test_dp_mf.py does for dp-mf;
    # tests/privacy/test_dp_als.py checks what the noise does.
    fold_in_refold_change = 1e-6

    def make(self) -> BaseRecommender:
        return DPALS(target_epsilon=100.0, factors=4, iterations=5, item_l2=1.0, max_items=None)


class TestALSTwin(RecommenderContract):
    # DPALS without noise (target_epsilon=None): dp-als' non-private twin.
    fold_in_refold_change = 1e-6

    def make(self) -> BaseRecommender:
        return DPALS(target_epsilon=None, factors=4, iterations=5, item_l2=1.0, max_items=None)

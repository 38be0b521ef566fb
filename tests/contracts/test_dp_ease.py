"""Private EASE (`dp-ease`, both privacy units) and its non-private twin (`ease-twin`) run the
shared contract (numpy and scipy only: no torch needed)."""

from __future__ import annotations

from socialrec.retrieve.base import BaseRecommender
from socialrec.retrieve.dp_ease import DPEASE
from tests.contracts.recommender_contract import RecommenderContract


class TestDPEASE(RecommenderContract):
    # User level at a loose budget on the 48-user block data: the contract checks the machinery,
    # tests/privacy/test_dp_ease.py what the noise does.
    def make(self) -> BaseRecommender:
        return DPEASE(target_epsilon=100.0, l2=10.0, max_items=None)


class TestDPEASEInteraction(RecommenderContract):
    def make(self) -> BaseRecommender:
        return DPEASE(target_epsilon=100.0, privacy_unit="interaction", l2=1.0, max_items=None, min_weight_count=1)


class TestEASETwin(RecommenderContract):
    def make(self) -> BaseRecommender:
        return DPEASE(target_epsilon=None, l2=1.0, max_items=None)

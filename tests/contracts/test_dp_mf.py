"""Matrix factorisation (`mf`) and its DP-SGD twin (`dp-mf`) run the shared contract."""

from __future__ import annotations

import pytest

from socialrec.retrieve.base import BaseRecommender
from tests.contracts.recommender_contract import RecommenderContract

pytest.importorskip("torch")
pytest.importorskip("opacus")

from socialrec.retrieve.dp_mf import DPMF, MF  # noqa: E402

FAST = dict(factors=16, learning_rate=0.05, epochs=30, batch_size=16, random_state=0)


class TestMF(RecommenderContract):
    # A fold-in ("aggregate") stores the user's row: their vector is read from it through the fixed
    # item vectors at scoring time, so re-folding changes nothing and other users never move.
    fold_in_refold_change = 0.0

    def make(self) -> BaseRecommender:
        return MF(**FAST)


class TestDPMF(RecommenderContract):
    # The contract's block data has 48 users: at epsilon 8 (user-level, delta 1/48) the noise
    # hides the blocks, as it should with so few records; the contract checks the model's
    # machinery, so it runs with a loose budget. tests/privacy checks what the noise does.
    fold_in_refold_change = 0.0

    def make(self) -> BaseRecommender:
        return DPMF(target_epsilon=100.0, max_grad_norm=1.0, **FAST)


class TestDPMFTied(RecommenderContract):
    # One vector per item for both roles.
    fold_in_refold_change = 0.0

    def make(self) -> BaseRecommender:
        return DPMF(target_epsilon=100.0, max_grad_norm=1.0, tied=True, **FAST)


class TestDPMFInteraction(RecommenderContract):
    # A record is one interaction; user vectors are solved against the fixed DP item side
    # (fold_in "solve", L-BFGS from zero): re-folding an unchanged row solves it in another batch of
    # users, which moves the L-BFGS stopping point slightly.
    fold_in_refold_change = 1e-3

    def make(self) -> BaseRecommender:
        return DPMF(target_epsilon=100.0, max_grad_norm=1.0, privacy_unit="interaction",
                    **{**FAST, "batch_size": 64})

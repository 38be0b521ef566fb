"""Fixed-candidate evaluation (the LLMRank protocol) on cases whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.errors import LeakageError
from socialrec.evaluate.candidates import CandidateTask, evaluate_candidates, expected_random_ndcg


class Fixed:
    """Scores given up front: row per user."""

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = np.asarray(scores, dtype=np.float32)
        self.n_items_ = self.scores.shape[1]

    def score(self, users: np.ndarray) -> np.ndarray:
        return self.scores[np.asarray(users)]


def _task() -> CandidateTask:
    cands = np.array([[0, 1, 2, 3], [4, 5, 6, 7]])
    relevant = np.zeros(cands.shape, dtype=bool)
    relevant[:, 0] = True
    return CandidateTask("t", np.array([0, 1]), cands, relevant)


def test_ranks_only_the_candidates() -> None:
    scores = np.zeros((2, 9))
    scores[0, [0, 1, 2, 3, 8]] = [0.5, 0.9, 0.1, 0.2, 99.0]  # item 8 is not a candidate
    scores[1, [4, 5, 6, 7]] = [1.0, 0.0, 0.2, 0.3]
    res = evaluate_candidates(Fixed(scores), _task(), ks=(1, 2, 4))
    np.testing.assert_array_equal(res.top_items[0], [1, 0, 3, 2])
    np.testing.assert_allclose(res.per_user["ndcg@4"], [1 / np.log2(3), 1.0])
    np.testing.assert_array_equal(res.per_user["hit@1"], [0.0, 1.0])


def test_masked_candidates_rank_last_and_leakage_is_refused() -> None:
    scores = np.zeros((2, 8))
    scores[0, [0, 1, 2, 3]] = [0.5, 0.9, 0.1, 0.2]
    mask = sp.csr_matrix(([1.0], ([0], [1])), shape=(2, 8))  # user 0 already has item 1
    res = evaluate_candidates(Fixed(scores), _task(), mask=mask, ks=(1,))
    assert res.top_items[0, 0] == 0 and res.top_items[0, -1] == 1
    leak = sp.csr_matrix(([1.0], ([0], [0])), shape=(2, 8))
    with pytest.raises(LeakageError, match="relevant candidate"):
        evaluate_candidates(Fixed(scores), _task(), mask=leak, ks=(1,))


def test_all_tied_scores_average_to_the_random_expectation() -> None:
    n_users, n_cand = 4000, 20
    cands = np.arange(n_users * n_cand).reshape(n_users, n_cand) % 100
    relevant = np.zeros(cands.shape, dtype=bool)
    relevant[:, 0] = True  # listed first: ties must not favour it
    task = CandidateTask("tied", np.arange(n_users), cands, relevant)
    res = evaluate_candidates(Fixed(np.zeros((n_users, 100))), task, ks=(10,))
    expected = expected_random_ndcg(20, 10)
    assert expected == pytest.approx(sum(1 / np.log2(r + 1) for r in range(1, 11)) / 20)
    assert abs(res.mean()["ndcg@10"] - expected) < 0.01


def test_misaligned_task_is_refused() -> None:
    with pytest.raises(ValueError, match="do not line up"):
        CandidateTask("bad", np.array([0]), np.zeros((2, 3), dtype=int), np.ones((2, 3), dtype=bool))

"""The shared contract every recommender passes. A new model gets a test class that inherits
`RecommenderContract` and implements `make()`; nothing else is needed to be covered."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from socialrec.errors import NotFittedError
from socialrec.ingest.schema import Dataset
from socialrec.retrieve.base import BaseRecommender, TrainData


def block_social_dataset(data: sp.csr_matrix, users_per_block: int) -> "Dataset":
    """A dataset over `block_data` whose friendships stay inside each block (homophily)."""
    import pandas as pd

    from socialrec.ingest.schema import build_dataset

    n_users, n_items = data.shape
    coo = data.tocoo()
    inter = pd.DataFrame({"user": coo.row.astype(str), "item": coo.col.astype(str)})
    rng = np.random.default_rng(1)
    src, dst = [], []
    for u in range(n_users):
        block = u // users_per_block
        friends = rng.choice(users_per_block, size=3, replace=False) + block * users_per_block
        for f in friends[friends != u]:
            src.append(str(u))
            dst.append(str(f))
    social = pd.DataFrame({"source": src, "target": dst}).drop_duplicates()
    return build_dataset("blocks", inter, social=social, social_directed=True,
                         users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}),
                         items=pd.DataFrame({"id": [str(i) for i in range(n_items)]}))


def block_data(n_blocks: int = 4, users_per_block: int = 12, items_per_block: int = 10,
               items_per_user: int = 7, seed: int = 0) -> sp.csr_matrix:
    """Users in block b interact only with items of block b: the right recommendations for a
    user are the unseen items of their own block, and an item's neighbours are its block."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for b in range(n_blocks):
        for u in range(users_per_block):
            items = rng.choice(items_per_block, size=items_per_user, replace=False) + b * items_per_block
            rows.extend([b * users_per_block + u] * items_per_user)
            cols.extend(items.tolist())
    shape = (n_blocks * users_per_block, n_blocks * items_per_block)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


class RecommenderContract:
    """Inherit and implement `make`. Set `learns_structure = False` for models that ignore who
    the user is (popularity)."""

    learns_structure = True
    users_per_block = 12
    items_per_block = 10

    def make(self) -> BaseRecommender:
        raise NotImplementedError

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls) -> sp.csr_matrix:
        return block_data(users_per_block=cls.users_per_block, items_per_block=cls.items_per_block)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data: sp.csr_matrix) -> BaseRecommender:
        return cls().make().fit(cls.train_data(data))

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        """What fit receives; models that need side information (a social graph) override this."""
        return TrainData.from_matrix(data)

    def test_unfitted_model_says_call_fit(self) -> None:
        model = self.make()
        for call in (lambda: model.recommend(0), lambda: model.similar_items(0), lambda: model.score([0])):
            with pytest.raises(NotFittedError, match=r"call .*fit\("):
                call()

    def test_batch_equals_scalar(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        users = np.arange(data.shape[0])
        ids, scores = fitted.recommend(users, k=5)
        assert ids.shape == (len(users), 5) and scores.shape == (len(users), 5)
        for u in users:
            one_ids, one_scores = fitted.recommend(int(u), k=5)
            np.testing.assert_array_equal(one_ids, ids[u])
            np.testing.assert_allclose(one_scores, scores[u], rtol=1e-4, atol=1e-6)
        sim_ids, sim_scores = fitted.similar_items(np.arange(data.shape[1]), k=4)
        for i in range(data.shape[1]):
            one_ids, one_scores = fitted.similar_items(i, k=4)
            np.testing.assert_array_equal(one_ids, sim_ids[i])
            np.testing.assert_allclose(one_scores, sim_scores[i], rtol=1e-4, atol=1e-6)

    def test_recommend_returns_sorted_unseen_items(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        ids, scores = fitted.recommend(np.arange(data.shape[0]), k=3)
        assert ids.dtype == np.int32 and scores.dtype == np.float32
        for u in range(data.shape[0]):
            seen = set(data[u].indices.tolist())
            assert not seen & set(ids[u].tolist())
            assert np.all(np.diff(scores[u]) <= 1e-6)

    def test_seen_items_come_back_when_asked(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        ids, _ = fitted.recommend(0, k=data.shape[1], exclude_seen=False)
        assert set(ids.tolist()) == set(range(data.shape[1]))

    def test_more_than_available_pads(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        n_unseen = data.shape[1] - data[0].nnz
        ids, scores = fitted.recommend(0, k=data.shape[1] + 5)
        assert (ids >= 0).sum() == n_unseen
        assert np.all(ids[n_unseen:] == -1) and np.all(np.isneginf(scores[n_unseen:]))

    def test_candidate_restriction(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        candidates = np.array([1, 15, 25, 35])
        ids, _ = fitted.recommend(np.arange(data.shape[0]), k=2, items=candidates, exclude_seen=False)
        assert set(ids[ids >= 0].tolist()) <= set(candidates.tolist())

    def test_recommends_own_block(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        if not self.learns_structure:
            pytest.skip("this model does not personalise")
        ids, _ = fitted.recommend(np.arange(data.shape[0]), k=3)
        user_block = np.arange(data.shape[0]) // self.users_per_block
        item_block = ids // self.items_per_block
        assert (item_block == user_block[:, None]).mean() >= 0.95

    def test_similar_items_share_block(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        items = np.arange(data.shape[1])
        ids, _ = fitted.similar_items(items, k=3)
        assert not np.any(ids == items[:, None])  # never the item itself
        if self.learns_structure:
            assert (ids // self.items_per_block == (items // self.items_per_block)[:, None]).mean() >= 0.9

    def test_score_shape_and_finite(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        s = fitted.score(np.array([0, 3, 5]))
        assert s.shape == (3, data.shape[1]) and s.dtype == np.float32
        assert np.isfinite(s).all()

    def test_params_roundtrip_and_clone(self, fitted: BaseRecommender) -> None:
        params = fitted.get_params()
        twin = fitted.clone()
        assert type(twin) is type(fitted) and twin.get_params() == params
        with pytest.raises(NotFittedError):
            twin.recommend(0)
        with pytest.raises(ValueError, match="no hyperparameter"):
            self.make().set_params(not_a_parameter=1)

    def test_refit_is_deterministic(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        again = fitted.clone().fit(self.train_data(data))
        np.testing.assert_array_equal(again.recommend(np.arange(6), k=4)[0], fitted.recommend(np.arange(6), k=4)[0])

    def test_bad_user_index_is_a_clear_error(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        with pytest.raises(IndexError, match="out of range"):
            fitted.recommend(data.shape[0])
        with pytest.raises(TypeError, match="IdMap"):
            fitted.recommend("alice")  # type: ignore[arg-type]

    def test_empty_training_data_is_refused(self) -> None:
        with pytest.raises(ValueError, match="no interactions"):
            self.make().fit(sp.csr_matrix((4, 4), dtype=np.float32))

"""The shared contract every recommender passes. A new model gets a test class that inherits
`RecommenderContract` and implements `make()`; nothing else is needed to be covered.

Besides fitting and serving, the contract covers persistence (`save`/`load` round trips and
refuses other data, other files, other classes) and online updates: `partial_fit_users` must
agree with a refit within the tolerance the test class states (``fold_in_*`` attributes, each
measured and justified where it is set), serve brand-new users, and leave other users alone.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

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


class _OtherModel(BaseRecommender):
    """A class no saved model belongs to (for the refused-class check)."""

    def _fit(self, train: TrainData) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


def top_k_overlap(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over rows of |set(a_row) & set(b_row)| / k."""
    return float(np.mean([len(set(x.tolist()) & set(y.tolist())) / a.shape[1] for x, y in zip(a, b)]))


class RecommenderContract:
    """Inherit and implement `make`. Set `learns_structure = False` for models that ignore who
    the user is (popularity).

    Online updates (``partial_fit_users``; skipped for models whose ``fold_in`` is None, which
    must say to refit instead). Each is the bound a test class holds its model to:
    fold_in_top_k_overlap: a model fitted without the users' rows and then given them agrees
        with the model fitted on all rows on at least this share of their top 3 (the unseen
        items of their block); "history" models must also give the same ordered top 5.
    fold_in_score_rtol: when set, the folded-in users' scores equal the full fit's this closely.
    fold_in_refold_change: re-folding users with their unchanged training rows moves their
        scores by at most this share of the largest score (0 up to rounding where the fold-in
        recomputes what fit computed; larger where it solves or aggregates anew). A second
        identical fold-in then changes nothing.
    fold_in_isolated: other users' scores do not move (False where they read the folded-in
        users' rows: neighbours, friends, popularity counts).
    places_items: `partial_fit_items` places new items from text (``new_item_text`` gives a
        text for block b); other models must refuse.
    places_items_from_vectors: `partial_fit_item_vectors` places new items from modality vectors
        (``new_item_vectors`` gives them for blocks); other models must refuse.
    persists: `save`/`load` with the checked header (False for models with their own format).
    """

    learns_structure = True
    users_per_block = 12
    items_per_block = 10
    fold_users = (3, 29)  # in blocks 0 and 2, not friends of each other
    fold_in_top_k_overlap = 1.0
    fold_in_score_rtol: float | None = None
    fold_in_refold_change = 1e-6
    fold_in_isolated = True
    places_items = False
    places_items_from_vectors = False
    persists = True

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

    @pytest.fixture(scope="class")
    @classmethod
    def social(cls, data: sp.csr_matrix) -> sp.csr_matrix | None:
        """The training graph's out-edges (None without one): the rows a fold-in passes along."""
        ds = cls.train_data(data).dataset
        return ds.social_matrix() if ds is not None and len(ds.social) else None

    @pytest.fixture(scope="class")
    @classmethod
    def emptied(cls, data: sp.csr_matrix) -> BaseRecommender:
        """The model fitted with the fold-in users' rows emptied (their items unseen by training)."""
        model = cls().make()
        if model.fold_in is None:
            pytest.skip("this model cannot fold in users")
        rows = data.tolil()
        for u in cls.fold_users:
            rows[u, :] = 0
        without = sp.csr_matrix(rows, dtype=np.float32)
        without.eliminate_zeros()
        return model.fit(cls.train_data(without))

    def new_item_text(self, block: int) -> str:
        """A text a new item of ``block`` would have (models that place items from text)."""
        raise NotImplementedError

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

    # --- persistence ---------------------------------------------------------------------
    def test_save_load_round_trip(self, fitted: BaseRecommender, data: sp.csr_matrix, tmp_path: Path) -> None:
        if not self.persists:
            pytest.skip("this model saves in its own format (tested with the model)")
        path = fitted.save(tmp_path / "model.pkl", dataset="blocks")
        loaded = type(fitted).load(path, fingerprint=fitted.training_fingerprint(), dataset="blocks")
        users = np.arange(data.shape[0])
        np.testing.assert_array_equal(loaded.score(users), fitted.score(users))
        np.testing.assert_array_equal(loaded.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])
        assert type(BaseRecommender.load(path)) is type(fitted)

    def test_load_refuses_other_data_files_and_classes(self, fitted: BaseRecommender, tmp_path: Path) -> None:
        if not self.persists:
            pytest.skip("this model saves in its own format (tested with the model)")
        path = fitted.save(tmp_path / "model.pkl", dataset="blocks")
        with pytest.raises(ValueError, match=r"fitted on other data.*header 'fingerprint' is '.*refit on this data"):
            type(fitted).load(path, fingerprint="0" * 64)
        with pytest.raises(ValueError, match=r"fitted on other data.*dataset 'other'.*header 'dataset' is 'blocks'"):
            type(fitted).load(path, dataset="other")
        junk = tmp_path / "junk.pkl"
        junk.write_bytes(b"not a pickle at all")
        with pytest.raises(ValueError, match="not a saved socialrec model"):
            type(fitted).load(junk)
        plain = tmp_path / "plain.pkl"
        plain.write_bytes(pickle.dumps({"format": "something else"}))
        with pytest.raises(ValueError, match="not a saved socialrec model .*save one with model.save"):
            type(fitted).load(plain)
        with pytest.raises(TypeError, match=rf"holds a \S*{type(fitted).__name__}, not a _OtherModel"):
            _OtherModel.load(path)
        with pytest.raises(FileNotFoundError, match="no saved model there"):
            type(fitted).load(tmp_path / "missing.pkl")

    # --- online updates --------------------------------------------------------------------
    def _folding(self, fitted: BaseRecommender) -> BaseRecommender:
        """A copy of the fitted model to fold into (the class's fixture stays as fitted)."""
        if fitted.fold_in is None:
            pytest.skip("this model cannot fold in users (test_fold_in_unsupported_says_refit)")
        return copy.deepcopy(fitted)

    @staticmethod
    def _rows(social: sp.csr_matrix | None, users: np.ndarray) -> sp.csr_matrix | None:
        return None if social is None else social[users]

    def test_fold_in_unsupported_says_refit(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        if fitted.fold_in is not None:
            pytest.skip(f"this model folds users in ({fitted.fold_in!r})")
        with pytest.raises(NotImplementedError, match=r"cannot fold in users without refitting; refit it"):
            fitted.partial_fit_users([0], data[[0]])

    def test_fold_in_agrees_with_a_refit(self, fitted: BaseRecommender, emptied: BaseRecommender,
                                         data: sp.csr_matrix, social: sp.csr_matrix | None) -> None:
        users = np.array(self.fold_users)
        model = self._folding(emptied)
        assert model.partial_fit_users(users, data[users], social=self._rows(social, users)) is model
        k = self.items_per_block - int(data[users[0]].nnz)  # the unseen items of their block
        folded, full = model.recommend(users, k=k)[0], fitted.recommend(users, k=k)[0]
        assert top_k_overlap(folded, full) >= self.fold_in_top_k_overlap, (folded, full)
        if fitted.fold_in == "history":
            np.testing.assert_array_equal(model.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])
        if self.fold_in_score_rtol is not None:
            np.testing.assert_allclose(model.score(users), fitted.score(users), rtol=self.fold_in_score_rtol,
                                       atol=self.fold_in_score_rtol)

    def test_refolding_unchanged_users_keeps_their_scores(self, fitted: BaseRecommender, data: sp.csr_matrix,
                                                          social: sp.csr_matrix | None) -> None:
        users = np.array(self.fold_users)
        model = self._folding(fitted)
        before = fitted.score(users)
        model.partial_fit_users(users, data[users], social=self._rows(social, users))
        after = model.score(users)
        assert np.abs(after - before).max() <= self.fold_in_refold_change * np.abs(before).max()
        k = self.items_per_block - int(data[users[0]].nnz)
        assert top_k_overlap(model.recommend(users, k=k)[0], fitted.recommend(users, k=k)[0]) >= self.fold_in_top_k_overlap
        model.partial_fit_users(users, data[users], social=self._rows(social, users))
        np.testing.assert_allclose(model.score(users), after, rtol=1e-5, atol=1e-6)

    def test_a_new_user_gets_their_blocks_items(self, fitted: BaseRecommender, data: sp.csr_matrix,
                                                social: sp.csr_matrix | None) -> None:
        model = self._folding(fitted)
        n, n_items = data.shape
        block = 2
        items = np.arange(7) + block * self.items_per_block
        row = sp.csr_matrix((np.ones(len(items), np.float32), (np.zeros(len(items), int), items)), shape=(1, n_items))
        friends = block * self.users_per_block + np.array([0, 4, 8])
        friend_row = sp.csr_matrix((np.ones(3, np.float32), (np.zeros(3, int), friends)), shape=(1, n + 1))
        model.partial_fit_users([n], row, social=friend_row if social is not None else None)
        assert model.n_users_ == n + 1 and model.user_items_.shape == (n + 1, n_items)
        ids, scores = model.recommend(n, k=3)
        assert not set(ids.tolist()) & set(items.tolist()) and np.isfinite(scores).all()
        if self.learns_structure:
            assert np.all(ids // self.items_per_block == block), ids
        # An index past the end adds the users in between, with empty histories.
        model.partial_fit_users(np.array([n + 3]), row)
        assert model.n_users_ == n + 4
        s = model.score(np.array([n + 1, n + 2, n + 3]))
        assert s.shape == (3, n_items) and np.isfinite(s).all()
        assert model.recommend(n + 1, k=3)[0].shape == (3,)

    def test_a_fold_in_leaves_other_users_alone(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        model = self._folding(fitted)
        users = np.array(self.fold_users)
        others = np.setdiff1d(np.arange(data.shape[0]), users)
        changed = sp.csr_matrix(data[users][:, ::-1])  # a new taste: the mirror block's items
        model.partial_fit_users(users, changed)
        assert (model.user_items_[others] != data[others]).nnz == 0
        assert (model.user_items_[users] != changed).nnz == 0
        if self.fold_in_isolated:
            np.testing.assert_array_equal(model.score(others), fitted.score(others))

    def test_fold_in_arguments_are_checked(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        model = self._folding(fitted)
        n_items = data.shape[1]
        with pytest.raises(ValueError, match=rf"must have shape \(1, {n_items}\) \(one row per user"):
            model.partial_fit_users([0], data[[0, 1]])
        with pytest.raises(ValueError, match=rf"must have shape \(1, {n_items}\)"):
            model.partial_fit_users([0], data[[0]][:, :-1])
        with pytest.raises(ValueError, match="same user twice"):
            model.partial_fit_users([0, 0], data[[0, 0]])
        for bad in ([-1], ["alice"], [[0]]):
            with pytest.raises(TypeError, match="non-negative integer indices.*IdMap"):
                model.partial_fit_users(bad, data[[0]])
        with pytest.raises(ValueError, match=r"social must have one row per user \(1\)"):
            model.partial_fit_users([0], data[[0]], social=sp.csr_matrix((2, data.shape[0])))
        with pytest.raises(NotFittedError, match=r"call .*fit\("):
            self.make().partial_fit_users([0], data[[0]])
        users = np.arange(data.shape[0])
        np.testing.assert_array_equal(model.score(users), fitted.score(users))  # refused calls change nothing

    def check_placed_for_blocks(self, model: BaseRecommender, data: sp.csr_matrix, index: np.ndarray) -> None:
        """Two new items, described like blocks 0 and 2, got the next indices and reach those blocks' users."""
        n_users, n_items = data.shape
        np.testing.assert_array_equal(index, [n_items, n_items + 1])
        assert model.n_items_ == n_items + 2 and model.user_items_.shape == (n_users, n_items + 2)
        assert model.score(np.array([0])).shape == (1, n_items + 2)
        for block, item in ((0, n_items), (2, n_items + 1)):
            users = np.arange(self.users_per_block) + block * self.users_per_block
            ids, _ = model.recommend(users, k=5)
            assert np.mean([item in row for row in ids]) >= 0.9, ids

    def new_item_vectors(self, blocks: list[int]) -> dict[str, np.ndarray]:
        """Modality vectors new items of ``blocks`` would have (models that place items from vectors)."""
        raise NotImplementedError

    def test_new_items_from_vectors(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        model = copy.deepcopy(fitted)
        if not self.places_items_from_vectors:
            with pytest.raises(NotImplementedError, match="cannot place new items from modality vectors"):
                model.partial_fit_item_vectors({"image": np.zeros((1, 4))})
            return
        n_users, n_items = data.shape
        self.check_placed_for_blocks(model, data, model.partial_fit_item_vectors(self.new_item_vectors([0, 2])))
        from socialrec.errors import DataError

        good = self.new_item_vectors([1])
        name = next(iter(good))
        with pytest.raises(DataError, match="dimension"):
            model.partial_fit_item_vectors({name: np.zeros((1, good[name].shape[1] + 1))})
        with pytest.raises(DataError, match="unknown modality"):
            model.partial_fit_item_vectors({"smell": np.zeros((1, 3))})
        assert model.n_items_ == n_items + 2  # refused calls add nothing

    def test_new_items_from_text(self, fitted: BaseRecommender, data: sp.csr_matrix) -> None:
        model = copy.deepcopy(fitted)
        if not self.places_items:
            with pytest.raises(NotImplementedError, match="cannot place new items"):
                model.partial_fit_items(["new"], ["a new item"])
            return
        n_users, n_items = data.shape
        self.check_placed_for_blocks(
            model, data, model.partial_fit_items(["new-0", "new-2"], [self.new_item_text(0), self.new_item_text(2)]))
        with pytest.raises(ValueError, match="one text per item id"):
            model.partial_fit_items(["a", "b"], ["only one"])
        with pytest.raises(ValueError, match="twice"):
            model.partial_fit_items(["new-0"], ["again"])
        with pytest.raises(ValueError, match="no text"):
            model.partial_fit_items(["blank"], ["  "])
        # A user folded in afterwards can have the new items in their row.
        model.partial_fit_users([0], sp.csr_matrix(([1.0], ([0], [n_items])), shape=(1, n_items + 2)))
        assert model.recommend(0, k=3)[0].shape == (3,)

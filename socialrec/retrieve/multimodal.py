"""Recommenders that read items' modality vectors (image, audio, ...: `Dataset.item_features`).

- `VBPR` (He & McAuley 2016): matrix factorisation where half of an item's vector is learned
  from its id and half is a learned linear projection of its modality vectors; BPR loss.
- `MultimodalGCN`: FREEDOM-style fusion (Zhou & Shen 2023). A frozen item-item kNN graph is
  built once from each modality (cosine, top ``knn_k`` neighbours, symmetric-normalised) and the
  graphs are averaged; item id embeddings are propagated over it, users and items over the
  user-item graph as in LightGCN, and an item's final vector is the sum of the two plus
  ``feature_weight`` times a learned projection of its vectors. Items without training
  interactions (cold items) take their vector from their modality neighbours and their own
  vectors only: their untrained id embedding is left out.
- `ModalityProfile`: no training; a user's profile is the mean of the (unit-normalised) vectors
  of their items, per modality, and an item scores by cosine to it. The hybrid's modality
  channel for items nobody has interacted with yet.

All three place new items from their vectors without refitting (`partial_fit_item_vectors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import DataError
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy
from socialrec.retrieve.fold_in import grow_columns
from socialrec.retrieve.graph_models import _COMMON_DOC, LightGCN, _PropagationModel, _sym_normalize, _to_torch_sparse


def modality_features(train: TrainData, modalities: Sequence[str] | None, model: str) -> dict[str, np.ndarray]:
    """The named item feature matrices of the training data's dataset (all when ``modalities``
    is None), checked against the training matrix's item count."""
    ds = train.dataset
    have = {} if ds is None else dict(ds.item_features)
    if not have:
        raise DataError(f"{model} needs item modality vectors, and the training data has none",
                        fix="Fit with Split.train_data() of a dataset with item_features (e.g. tiktok-multimodal), "
                            "or attach vectors with socialrec.ingest.features.with_item_features")
    names = tuple(have) if modalities is None else tuple(modalities)
    missing = [m for m in names if m not in have]
    if missing or not names:
        raise DataError(f"{model}: modalities {missing or list(names)} are not in the dataset, which has {list(have)}",
                        field="modalities", fix=f"Use some of {list(have)}")
    out = {}
    for name in names:
        m = np.asarray(have[name], dtype=np.float32)
        if m.shape[0] != train.n_items:
            raise DataError(f"modality {name!r} has {m.shape[0]} rows for {train.n_items} items", field=name,
                            fix="Attach one row per item")
        out[name] = m
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero: "no vector")."""
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def present_rows(m: np.ndarray) -> np.ndarray:
    """Which items have a vector of this modality (a zero row means "no vector", ingest.features)."""
    return np.abs(m).sum(axis=1) > 0


def present_mean(m: np.ndarray) -> np.ndarray:
    """The mean vector over the items that have one (zeros when none has)."""
    present = present_rows(m)
    return m[present].mean(axis=0) if present.any() else np.zeros(m.shape[1], dtype=m.dtype)


def centred_unit_rows(m: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Rows minus ``mean``, scaled to unit length; an item without a vector stays zero (centring
    would otherwise give it the vector -mean)."""
    c = np.asarray(m, dtype=np.float32) - mean
    c[~present_rows(m)] = 0.0
    return unit_rows(c)


def standardize(features: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The modalities side by side, each column standardised over the items that have that
    modality's vector (std 1 where a column is constant), with the means and stds."""
    means, stds = [], []
    for m in features.values():
        present = present_rows(m)
        rows = m[present] if present.any() else m
        means.append(rows.mean(axis=0))
        std = rows.std(axis=0)
        stds.append(np.where(std > 1e-8, std, 1.0))
    mean, std = np.concatenate(means).astype(np.float32), np.concatenate(stds).astype(np.float32)
    return apply_standardize(features, mean, std), mean, std


def apply_standardize(features: Mapping[str, np.ndarray], mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """`standardize` with fitted means and stds; a missing vector stays zero (not -mean / std)."""
    x = (np.hstack(list(features.values())) - mean) / std
    col = 0
    for m in features.values():
        x[~present_rows(m), col:col + m.shape[1]] = 0.0
        col += m.shape[1]
    return x.astype(np.float32)


def knn_graph(vectors: np.ndarray, k: int, *, query: np.ndarray | None = None, batch: int = 2048) -> sp.csr_matrix:
    """0/1 (n_query, n) CSR of each query row's top ``k`` cosine neighbours among ``vectors``
    (self excluded when ``query`` is None; zero rows have no neighbours)."""
    base = unit_rows(vectors).astype(np.float64)
    q = base if query is None else unit_rows(query).astype(np.float64)
    k = min(k, base.shape[0] - (1 if query is None else 0))
    rows, cols = [], []
    for start in range(0, len(q), batch):
        sims = q[start:start + batch] @ base.T
        if query is None:
            sims[np.arange(len(sims)), np.arange(start, start + len(sims))] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k > 0 else np.zeros((len(sims), 0), dtype=np.int64)
        has = np.linalg.norm(q[start:start + batch], axis=1) > 0
        for r in np.flatnonzero(has):
            rows.extend([start + r] * top.shape[1])
            cols.extend(top[r].tolist())
    data = np.ones(len(rows), dtype=np.float32)
    return sp.csr_matrix((data, (rows, cols)), shape=(len(q), len(base)))


def normalised_weights(names: Sequence[str], weights: Sequence[float] | None) -> np.ndarray:
    """Each modality's weight, summing to 1 (equal when ``weights`` is None)."""
    w = np.full(len(names), 1.0 / len(names)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(names) or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"modality_weights must be {len(names)} non-negative numbers (one per modality "
                         f"{list(names)}), not all zero; got {weights}")
    return w / w.sum()


def modality_graph(features: Mapping[str, np.ndarray], k: int,
                   weights: Sequence[float] | None = None) -> tuple[sp.csr_matrix, dict[str, np.ndarray]]:
    """FREEDOM's frozen item-item graph: per modality a symmetric-normalised kNN graph, combined
    with ``weights`` (equal when None); and each modality's node degrees, which normalised it
    (a new item's neighbours are normalised by them)."""
    names = list(features)
    total, degrees = None, {}
    for weight, name in zip(normalised_weights(names, weights), names):
        g = knn_graph(features[name], k)
        g = g.maximum(g.T).tocsr()
        degrees[name] = np.asarray(g.sum(axis=1)).ravel().astype(np.float64)
        g = _sym_normalize(g) * float(weight)
        total = g if total is None else total + g
    return sp.csr_matrix(total, dtype=np.float32), degrees


class _ModalityMixin:
    """What the modality models share: the features they were fitted with, and placing new items."""

    modalities: Sequence[str] | None
    item_features_: dict[str, np.ndarray]

    def modality_dims(self) -> dict[str, int]:
        """Modality name -> vector dimension the fitted model expects."""
        self._check_fitted("modality_dims")  # type: ignore[attr-defined]
        return {name: int(m.shape[1]) for name, m in self.item_features_.items()}

    def _new_item_features(self, vectors: Mapping[str, Any], n: int) -> dict[str, np.ndarray]:
        from socialrec.ingest.features import check_vectors

        checked = check_vectors(dict(vectors), self.modality_dims(), what="new item")
        out = {}
        for name, dim in self.modality_dims().items():
            m = checked.get(name, np.zeros((n, dim), dtype=np.float32))
            if m.shape[0] != n:
                raise DataError(f"modality {name!r} has {m.shape[0]} vector(s) for {n} new item(s)",
                                field=f"vectors.{name}", fix="Send one vector per new item")
            out[name] = m
        if not checked:
            raise DataError("no modality vectors for the new item(s)", field="vectors",
                            fix=f"Send at least one of {sorted(self.modality_dims())}")
        return out

    def partial_fit_item_vectors(self, vectors: Mapping[str, Any]) -> np.ndarray:
        """Place new items from their modality vectors (name -> (n, dim)) without refitting;
        returns their new indices (appended after the fitted items). Users' histories are kept."""
        self._check_fitted("partial_fit_item_vectors")  # type: ignore[attr-defined]
        n = len(np.atleast_2d(np.asarray(next(iter(vectors.values()))))) if vectors else 0
        feats = self._new_item_features(vectors, n)
        start = self.n_items_  # type: ignore[attr-defined]
        self._place_items(feats)
        for name, m in feats.items():
            self.item_features_[name] = np.vstack([self.item_features_[name], m])
        self.user_items_ = grow_columns(self.user_items_, start + n)  # type: ignore[attr-defined]
        self.n_items_ = start + n
        return np.arange(start, start + n)

    def _place_items(self, feats: dict[str, np.ndarray]) -> None:
        raise NotImplementedError


class VBPR(_ModalityMixin, _PropagationModel):
    __doc__ = ("VBPR (He & McAuley 2016): BPR matrix factorisation where an item's vector is its id "
               "embedding (first half) next to a learned linear projection of its standardised modality "
               "vectors (second half); users have one vector of the same size. New items are placed from "
               "their vectors (id half zero).\n" + _COMMON_DOC
               + "    modalities: names of the dataset's item_features to read (None: all), concatenated.\n")

    _valid_k = 20

    def __init__(self, embedding_dim: int = 64, learning_rate: float = 0.01, l2: float = 1e-4, loss: str = "bpr",
                 n_negatives: int = 256, temperature: float = 0.15, batch_size: int = 4096, epochs: int = 300,
                 patience: int = 5, eval_every: int = 2, random_state: int = 0, device: str = "cpu",
                 verbose: bool = False, modalities: Sequence[str] | None = None) -> None:
        self.embedding_dim = embedding_dim
        self.learning_rate = learning_rate
        self.l2 = l2
        self.loss = loss
        self.n_negatives = n_negatives
        self.temperature = temperature
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.eval_every = eval_every
        self.random_state = random_state
        self.device = device
        self.verbose = verbose
        self.modalities = modalities

    @property
    def n_layers(self) -> int:  # plain MF: no propagation
        return 0

    def _check_params(self) -> None:
        super()._check_params()
        if self.embedding_dim < 2:
            raise ValueError(f"embedding_dim must be >= 2 (id half and visual half), got {self.embedding_dim}")

    def _prepare(self, train: TrainData, torch: Any) -> None:
        feats = modality_features(train, self.modalities, "VBPR")
        self.item_features_ = feats
        x, self.feature_mean_, self.feature_std_ = standardize(feats)
        self._x = torch.from_numpy(x).to(self.device)
        half = self.embedding_dim // 2
        self._proj = torch.nn.Linear(x.shape[1], self.embedding_dim - half, bias=False).to(self.device)
        torch.nn.init.normal_(self._proj.weight, std=0.01, generator=self._gen)

    def _extra_parameters(self) -> list[Any]:
        return list(self._proj.parameters())

    def _readout(self, torch: Any, final: Any) -> Any:
        n_i = self._x.shape[0]
        n_u = final.shape[0] - n_i
        half = self.embedding_dim // 2
        items = torch.cat([final[n_u:, :half], self._proj(self._x)], dim=1)
        return torch.cat([final[:n_u], items], dim=0)

    def _extra_loss(self, torch: Any, user_ego: Any, users: Any) -> Any:
        return self.l2 * self._proj.weight.pow(2).sum() / max(1, len(users))

    def _state_numpy(self, torch: Any) -> dict[str, Any]:
        return {"projection_": self._proj.weight.detach().cpu().numpy().T.astype(np.float32)}

    def _fit(self, train: TrainData) -> None:
        super()._fit(train)
        for name in ("_x", "_proj"):
            self.__dict__.pop(name, None)

    def _place_items(self, feats: dict[str, np.ndarray]) -> None:
        x = apply_standardize(feats, self.feature_mean_, self.feature_std_)
        half = self.embedding_dim // 2
        new = np.hstack([np.zeros((len(x), half), np.float32), (x @ self.projection_).astype(np.float32)])
        if self.loss != "bpr":
            new = unit_rows(new)
        self.item_factors_ = np.vstack([self.item_factors_, new]).astype(np.float32)


class MultimodalGCN(_ModalityMixin, LightGCN):
    __doc__ = ("FREEDOM-style multimodal graph model (see the module docstring). Early stopping on "
               "validation NDCG@20.\n" + _COMMON_DOC
               + """    modalities: names of the dataset's item_features to read (None: all).
    knn_k: neighbours per item in each modality's frozen kNN graph.
    item_layers: propagation steps of the id embeddings over the item-item graph.
    modality_weights: weight of each modality's graph (None: equal).
    feature_weight: weight of the learned linear projection of the standardised vectors added to
        each item's vector (0 leaves it out).
""")

    _valid_k = 20

    def __init__(self, embedding_dim: int = 64, n_layers: int = 2, learning_rate: float = 0.01, l2: float = 1e-4,
                 loss: str = "full-softmax", n_negatives: int = 256, temperature: float = 0.15,
                 batch_size: int = 1024, epochs: int = 300, patience: int = 5, eval_every: int = 1,
                 random_state: int = 0, device: str = "cpu", verbose: bool = False, noise_eps: float = 0.1,
                 cl_weight: float = 0.0, cl_temperature: float = 0.2, modalities: Sequence[str] | None = None,
                 knn_k: int = 10, item_layers: int = 1, modality_weights: Sequence[float] | None = None,
                 feature_weight: float = 1.0) -> None:
        super().__init__(embedding_dim, n_layers, learning_rate, l2, loss, n_negatives, temperature, batch_size,
                         epochs, patience, eval_every, random_state, device, verbose, noise_eps, cl_weight,
                         cl_temperature)
        self.modalities = modalities
        self.knn_k = knn_k
        self.item_layers = item_layers
        self.modality_weights = modality_weights
        self.feature_weight = feature_weight

    def _check_params(self) -> None:
        super()._check_params()
        if self.knn_k < 1 or self.item_layers < 0:
            raise ValueError(f"knn_k must be >= 1 and item_layers >= 0, got {self.knn_k}, {self.item_layers}")
        if self.feature_weight < 0:
            raise ValueError(f"feature_weight must be >= 0, got {self.feature_weight}")

    def _prepare(self, train: TrainData, torch: Any) -> None:
        feats = modality_features(train, self.modalities, "MultimodalGCN")
        self.item_features_ = feats
        self.item_graph_, self.modality_degrees_ = modality_graph(feats, self.knn_k, self.modality_weights)
        self._item_adj = _to_torch_sparse(torch, self.item_graph_, self.device)
        warm = (np.diff(train.user_items.tocsc().indptr) > 0).astype(np.float32)
        self._warm = torch.from_numpy(warm[:, None]).to(self.device)
        x, self.feature_mean_, self.feature_std_ = standardize(feats)
        self._x = torch.from_numpy(x).to(self.device)
        self._proj = torch.nn.Linear(x.shape[1], self.embedding_dim, bias=False).to(self.device)
        torch.nn.init.normal_(self._proj.weight, std=0.01, generator=self._gen)

    def _extra_parameters(self) -> list[Any]:
        return list(self._proj.parameters()) if self.feature_weight > 0 else []

    def _item_side(self, torch: Any, ego_items: Any) -> Any:
        h = ego_items
        for _ in range(self.item_layers):
            h = torch.sparse.mm(self._item_adj, h)
        if self.feature_weight > 0:
            h = h + self.feature_weight * self._proj(self._x)
        return h

    def _readout(self, torch: Any, final: Any) -> Any:
        n_i = self._x.shape[0]
        n_u = final.shape[0] - n_i
        items = final[n_u:] * self._warm + self._item_side(torch, self._emb.weight[n_u:])
        return torch.cat([final[:n_u], items], dim=0)

    def _extra_loss(self, torch: Any, user_ego: Any, users: Any) -> Any:
        if self.feature_weight == 0:
            return None
        return self.l2 * self._proj.weight.pow(2).sum() / max(1, len(users))

    def _state_numpy(self, torch: Any) -> dict[str, Any]:
        n_i = self._x.shape[0]
        return {"projection_": self._proj.weight.detach().cpu().numpy().T.astype(np.float32),
                "item_ego_": self._emb.weight[-n_i:].detach().cpu().numpy().astype(np.float32)}

    def _fit(self, train: TrainData) -> None:
        super()._fit(train)
        for name in ("_x", "_proj", "_item_adj", "_warm"):
            self.__dict__.pop(name, None)

    def _place_items(self, feats: dict[str, np.ndarray]) -> None:
        # A new item's vector: its modality neighbours' id embeddings through the item-item graph
        # (one normalised step per modality, as in training), plus its projected vectors.
        names = list(self.item_features_)
        h = np.zeros((len(next(iter(feats.values()))), self.item_ego_.shape[1]))
        n_old = self.item_ego_.shape[0]  # the fitted items: later new items are nobody's neighbours
        for weight, name in zip(normalised_weights(names, self.modality_weights), names):
            g = knn_graph(self.item_features_[name][:n_old], self.knn_k, query=feats[name])
            k = np.asarray(g.sum(axis=1)).ravel()
            # Symmetric normalisation 1/sqrt(d_new d_j), d_j the neighbour's degree in this
            # modality's training graph (the one that normalised it).
            degree = self.modality_degrees_[name]
            coo = g.tocoo()
            vals = 1.0 / np.sqrt(np.maximum(k[coo.row], 1) * np.maximum(degree[coo.col], 1))
            norm = sp.csr_matrix((vals, (coo.row, coo.col)), shape=g.shape)
            h += weight * (norm @ self.item_ego_.astype(np.float64))
        if self.feature_weight > 0:
            x = apply_standardize({n: feats[n] for n in names}, self.feature_mean_, self.feature_std_)
            h += self.feature_weight * (x @ self.projection_)
        new = h.astype(np.float32)
        if self.loss in ("softmax", "full-softmax"):
            new = unit_rows(new)
        self.item_factors_ = np.vstack([self.item_factors_, new]).astype(np.float32)


class ModalityProfile(_ModalityMixin, BaseRecommender):
    """Content recommender over modality vectors: a user's profile per modality is the mean of
    their items' unit-normalised (centred) vectors, and an item's score is the weighted sum over
    modalities of the cosine between its vector and the profile. No training; new items are
    placed from their vectors at once, so it ranks items nobody has interacted with yet.

    modalities: names of the dataset's item_features to read (None: all).
    modality_weights: weight of each modality's cosine (None: equal).
    """

    fold_in = "history"

    def __init__(self, modalities: Sequence[str] | None = None, modality_weights: Sequence[float] | None = None) -> None:
        self.modalities = modalities
        self.modality_weights = modality_weights

    def _fit(self, train: TrainData) -> None:
        feats = modality_features(train, self.modalities, "ModalityProfile")
        self.weights_ = normalised_weights(list(feats), self.modality_weights)
        self.item_features_ = feats
        self.means_ = {n: present_mean(m) for n, m in feats.items()}
        self._set_vectors()

    def _set_vectors(self) -> None:
        # One matrix per modality, unit rows after centring, weighted by sqrt(w) on both sides.
        blocks = [centred_unit_rows(m, self.means_[n]) * np.sqrt(w)
                  for (n, m), w in zip(self.item_features_.items(), self.weights_)]
        self.item_vectors_ = np.hstack(blocks).astype(np.float32)

    def _user_vectors(self, users: np.ndarray) -> np.ndarray:
        rows = self.user_items_[users]
        counts = np.maximum(np.asarray(rows.sum(axis=1)).ravel(), 1.0)
        return np.asarray(rows @ self.item_vectors_.astype(np.float64)) / counts[:, None]

    def _score(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(self._user_vectors(users), float64_copy(self, "item_vectors_"))

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        v = float64_copy(self, "item_vectors_")
        return dot_scores(v[items], v)

    def _place_items(self, feats: dict[str, np.ndarray]) -> None:
        pass

    def partial_fit_item_vectors(self, vectors: Mapping[str, Any]) -> np.ndarray:
        idx = super().partial_fit_item_vectors(vectors)
        self._set_vectors()
        return idx

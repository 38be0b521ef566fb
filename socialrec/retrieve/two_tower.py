"""Two-tower recommender with a language-model item tower, fine-tuned on feedback.

The towers, the training loop and the CPU-saving choices (cached lower layers, per-epoch
refresh of the history side) live in `socialrec.represent.finetune`; this class puts them on
the recommender contract. An item's score is the cosine between the user vector (pooled
history, optional id embedding) and the item's text vector; items without interactions are
scored from their text like any other, and `encode_texts` places brand-new items.

Modes: "frozen" (zero-shot MiniLM, no training: the baseline), "lora" (LoRA adapters on the
top ``train_layers`` layers, via ``peft``), "full" (every weight of the top ``train_layers``
layers; ``train_layers=6`` trains all MiniLM layers, token embeddings stay frozen).
Measured in benchmarks/finetune.py (amazon-games, leave-one-out, full ranking).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from socialrec.errors import NotFittedError
from socialrec.represent import finetune as ft
from socialrec.represent.profiles import item_profiles, recency_order
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy

# Learning rates used when ``lr`` is None: adapters start at zero and take large steps; full
# fine-tuning moves pretrained weights and needs small ones. These are the values of the
# amazon-games run in benchmarks/finetune.py (LoRA 2e-3 with fewer steps learned less); not
# tuned further.
DEFAULT_LR = {"frozen": 0.0, "lora": 3e-3, "full": 2e-4}


@functools.lru_cache(maxsize=2)
def shared_minilm(device: str = "cpu") -> ft.TextBackbone:
    """One loaded MiniLM per device (loading costs seconds; its weights are never modified:
    towers copy the layers they train)."""
    return ft.load_minilm(device)


class TwoTowerRecommender(BaseRecommender):
    """Language-model two-tower recommender.

    mode: "frozen", "lora" or "full".
    lora_rank, lora_alpha: LoRA rank and scaling numerator (mode "lora").
    train_layers: top transformer layers that train (and run per step); the ones below are
        computed once for every item and cached.
    epochs, steps_per_epoch, batch_size: training length; each step is ``batch_size``
        (history, next item) examples with in-batch sampled softmax.
    lr: AdamW learning rate; None picks ``DEFAULT_LR[mode]``.
    projection, head_lr: a trained linear map after the pooling (identity at the start; trained
        modes only) and its learning rate (None: ``lr``).
    temperature: softmax temperature on cosine scores.
    max_length: tokens per item text (titles: 32 keeps 97% of amazon-games titles whole).
    history_length, recency_half_life: the user tower pools the last ``history_length``
        training items, the k-th most recent weighing 0.5 ** (k / recency_half_life).
    logq: popularity correction of in-batch negatives. user_embedding: a learned per-user
        vector added to the pooled history.
    patience, valid_users: early stopping on validation NDCG@10 of up to ``valid_users``
        sampled users (when `fit` gets validation data).
    seed: example sampling, validation sample and LoRA initialisation.
    device: torch device ("cpu", or "cuda" when there is one): the trained layers, the user side
        and the loss run there; the cache of frozen lower-layer states stays on the CPU and the
        frozen layers run where the backbone lives (MiniLM is loaded on ``device``; a given
        ``backbone`` may stay on the CPU). Vectors come back as numpy arrays.
    threads: torch intra-op threads while fitting (None: torch's setting; 1 is faster on a
        busy shared machine).
    backbone: a `socialrec.represent.finetune.TextBackbone` to use instead of MiniLM (tests).
    verbose: print one line per epoch to stderr.
    """

    def __init__(
        self,
        mode: str = "lora",
        lora_rank: int = 8,
        lora_alpha: float = 16.0,
        train_layers: int = 2,
        epochs: int = 3,
        steps_per_epoch: int = 200,
        batch_size: int = 256,
        lr: float | None = None,
        head_lr: float | None = 1e-3,
        projection: bool = True,
        temperature: float = 0.05,
        max_length: int = 32,
        history_length: int = 20,
        recency_half_life: float | None = 5.0,
        logq: bool = True,
        user_embedding: bool = False,
        patience: int = 2,
        valid_users: int = 2000,
        seed: int = 0,
        device: str = "cpu",
        threads: int | None = None,
        backbone: ft.TextBackbone | None = None,
        verbose: bool = False,
    ) -> None:
        self.mode = mode
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.train_layers = train_layers
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = batch_size
        self.lr = lr
        self.head_lr = head_lr
        self.projection = projection
        self.temperature = temperature
        self.max_length = max_length
        self.history_length = history_length
        self.recency_half_life = recency_half_life
        self.logq = logq
        self.user_embedding = user_embedding
        self.patience = patience
        self.valid_users = valid_users
        self.seed = seed
        self.device = device
        self.threads = threads
        self.backbone = backbone
        self.verbose = verbose

    # --- configuration ---------------------------------------------------------------
    def tower_config(self) -> ft.TowerConfig:
        return ft.TowerConfig(mode=self.mode, train_layers=self.train_layers, lora_rank=self.lora_rank,
                              lora_alpha=self.lora_alpha, max_length=self.max_length, projection=self.projection)

    def train_config(self) -> ft.TrainConfig:
        lr = self.lr if self.lr is not None else DEFAULT_LR.get(self.mode, 1e-3)
        return ft.TrainConfig(epochs=self.epochs, steps_per_epoch=self.steps_per_epoch, batch_size=self.batch_size,
                              lr=lr if lr > 0 else 1e-3, head_lr=self.head_lr, temperature=self.temperature,
                              history_length=self.history_length, recency_half_life=self.recency_half_life,
                              logq=self.logq, user_embedding=self.user_embedding, patience=self.patience,
                              valid_users=self.valid_users, seed=self.seed)

    def _backbone(self) -> ft.TextBackbone:
        return self.backbone if self.backbone is not None else shared_minilm(self.device)

    # --- fitting ---------------------------------------------------------------------
    def _fit(self, train: TrainData) -> None:
        with ft.torch_threads(self.threads):
            self._fit_towers(train)

    def _fit_towers(self, train: TrainData) -> None:
        tcfg, cfg = self.tower_config(), self.train_config()  # both validate the parameters
        ds = train.dataset
        if ds is None:
            raise ValueError("TwoTowerRecommender needs item texts: fit it with TrainData(user_items, dataset=...) "
                             "(Split.train_data() does this), not with a bare matrix")
        if (ds.n_users, ds.n_items) != (self.n_users_, self.n_items_):
            raise ValueError(f"the dataset has {ds.n_users} users and {ds.n_items} items but the training "
                             f"matrix is {self.n_users_} x {self.n_items_}")
        texts = item_profiles(ds)
        self.tower_ = ft.build_item_tower(self._backbone(), texts, tcfg, device=self.device, seed=self.seed)
        self.histories_ = ft.ordered_histories(self.user_items_, recency_order(ds, self.user_items_))
        items, offsets = self.histories_
        self.training_log_ = ft.TrainingLog()
        user_emb = None
        if self.mode == "frozen":
            item_vecs = self.tower_.encode_all()
        else:
            vu, vt = self._validation_sample(train.valid_items)
            log = (lambda line: print(f"[two-tower {self.mode}] {line}", file=sys.stderr)) if self.verbose else None
            item_vecs, user_emb, self.training_log_ = ft.train_two_tower(
                self.tower_, items, offsets, cfg, valid_users=vu, valid_targets=vt,
                train_mask=self.user_items_, progress=log)
        self.item_vectors_ = item_vecs.astype(np.float32)
        self.user_emb_ = user_emb
        self.user_vectors_ = ft.user_vectors(self.item_vectors_, items, offsets, cfg, user_emb)

    def _validation_sample(self, valid: sp.csr_matrix | None) -> tuple[np.ndarray | None, np.ndarray | None]:
        """Up to ``valid_users`` users with a validation item, and one such item each."""
        if valid is None or valid.nnz == 0:
            return None, None
        valid = valid.tocsr()
        users = np.flatnonzero(np.diff(valid.indptr) > 0)
        if len(users) > self.valid_users:
            users = np.sort(np.random.default_rng(self.seed).choice(users, self.valid_users, replace=False))
        return users, valid.indices[valid.indptr[users]].astype(np.int64)

    # --- scoring ---------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(self.user_vectors_[users], float64_copy(self, "item_vectors_"))

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        return dot_scores(self.item_vectors_[items], float64_copy(self, "item_vectors_"))

    # --- online updates --------------------------------------------------------------
    # Fold-in ("aggregate"): the user tower is a pooling of the item vectors of the user's last
    # ``history_length`` items, so a folded-in user's vector is that pooling over their new row:
    # items still in it keep their place in the history, new ones (which a fold-in gives no
    # order) follow as the newest, in index order. A learned per-user vector (``user_embedding``)
    # is kept; new users have none. Re-folding an unchanged row gives the same vector.
    fold_in = "aggregate"

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        from socialrec.retrieve.fold_in import grow_rows

        items, offsets = self.histories_
        n_old = len(offsets) - 1
        lengths = np.diff(offsets)
        changed = np.zeros(self.n_users_, dtype=bool)
        changed[users] = True
        # The unchanged users' entries, then each folded-in user's new history.
        owner = np.repeat(np.arange(n_old), lengths)
        keep = ~changed[owner]
        parts_owner, parts_items = [owner[keep]], [items[keep]]
        for u in users:
            row = self.user_items_[u].indices
            old = items[offsets[u]:offsets[u + 1]] if u < n_old else np.zeros(0, dtype=np.int64)
            history = np.concatenate([old[np.isin(old, row)], np.setdiff1d(row, old)]).astype(np.int64)
            parts_owner.append(np.full(len(history), u, dtype=np.int64))
            parts_items.append(history)
        all_owner, all_items = np.concatenate(parts_owner), np.concatenate(parts_items)
        order = np.argsort(all_owner, kind="stable")  # by user, each user's history in order
        new_offsets = np.r_[0, np.cumsum(np.bincount(all_owner, minlength=self.n_users_))].astype(np.int64)
        self.histories_ = (all_items[order], new_offsets)
        if self.user_emb_ is not None:
            self.user_emb_ = grow_rows(self.user_emb_, self.n_users_)
        sub = [self.histories_[0][new_offsets[u]:new_offsets[u + 1]] for u in users]
        sub_offsets = np.r_[0, np.cumsum([len(h) for h in sub])].astype(np.int64)
        sub_items = np.concatenate(sub).astype(np.int64) if sub else np.zeros(0, dtype=np.int64)
        emb = None if self.user_emb_ is None else self.user_emb_[users]
        vectors = grow_rows(self.user_vectors_, self.n_users_).copy()
        vectors[users] = ft.user_vectors(self.item_vectors_, sub_items, sub_offsets, self.train_config(), emb)
        self.user_vectors_ = vectors

    def partial_fit_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Place new items from their text through the (trained) item tower (`encode_texts`).
        They get the next indices, returned in order; map ``item_ids`` to them in the same
        order in the dataset's IdMap. The training matrix grows by empty columns."""
        from socialrec.retrieve.fold_in import append_items, check_new_items

        ids, texts = check_new_items(self, item_ids, texts, "the item tower")
        index = append_items(self, ids, self.encode_texts(texts))
        return index

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Item-tower vectors of new item texts (cold items), comparable with ``item_vectors_``."""
        self._check_fitted("encode_texts")
        if getattr(self, "tower_", None) is None:
            self.tower_ = self._tower_from_saved()
        with ft.torch_threads(self.threads):
            return self.tower_.encode_texts(list(texts))

    # --- persistence -----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the fitted model to folder ``path``: hyperparameters, tower weights (LoRA
        adapters or the trained layers), item and user vectors and the training matrix.
        `load` gives a model with identical scores."""
        self._check_fitted("save")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        params = {k: v for k, v in self.get_params().items() if k not in ("backbone", "verbose")}
        (path / "params.json").write_text(json.dumps(params, indent=2))
        m = self.user_items_
        arrays = {"item_vectors": self.item_vectors_, "user_vectors": self.user_vectors_,
                  "ui_data": m.data, "ui_indices": m.indices, "ui_indptr": m.indptr,
                  "ui_shape": np.array(m.shape), "hist_items": self.histories_[0], "hist_offsets": self.histories_[1]}
        if self.user_emb_ is not None:
            arrays["user_emb"] = self.user_emb_
        np.savez(path / "arrays.npz", **arrays)
        ft.save_tower_state(path / "tower", self.tower_, {"backbone": self._backbone().name,
                                                          "training_log": self.training_log_.epochs})
        return path

    @classmethod
    def load(cls, path: str | Path, *, backbone: ft.TextBackbone | None = None,
             device: str | None = None) -> "TwoTowerRecommender":
        """A model saved by `save`. The tower (for `encode_texts`) is rebuilt on first use from
        ``backbone`` (default MiniLM) and the saved weights."""
        path = Path(path)
        if not (path / "params.json").exists():
            raise FileNotFoundError(f"{path} holds no saved TwoTowerRecommender (no params.json); "
                                    f"write one with model.save(path)")
        params = json.loads((path / "params.json").read_text())
        if device is not None:
            params["device"] = device
        model = cls(**params, backbone=backbone)
        with np.load(path / "arrays.npz") as z:
            shape = tuple(int(x) for x in z["ui_shape"])
            model._set_training_matrix(sp.csr_matrix((z["ui_data"], z["ui_indices"], z["ui_indptr"]), shape=shape))
            model.item_vectors_ = z["item_vectors"]
            model.user_vectors_ = z["user_vectors"]
            model.histories_ = (z["hist_items"], z["hist_offsets"])
            model.user_emb_ = z["user_emb"] if "user_emb" in z else None
        model.tower_ = None
        model._saved_at = path
        model.training_log_ = ft.TrainingLog()
        return model

    def _tower_from_saved(self) -> Any:
        saved = getattr(self, "_saved_at", None)
        if saved is None:
            raise NotFittedError(self, "encode_texts")
        config, state, meta = ft.read_tower_state(Path(saved) / "tower")
        bb = self._backbone()
        if meta.get("backbone") != bb.name:
            raise ValueError(f"{saved} was trained on {meta.get('backbone')!r} but the backbone given is "
                             f"{bb.name!r}; pass the same backbone to TwoTowerRecommender.load")
        tower = ft.build_item_tower(bb, [], config, device=self.device, seed=self.seed)
        tower.load_trainable_state(state)
        return tower

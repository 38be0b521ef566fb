"""Graph recommenders in torch (CPU by default): LightGCN, a social LightGCN that also propagates
over the user-user graph, and social-regularised matrix factorisation (SocialMF).

All three share one training loop: embeddings are propagated over a normalised sparse graph,
trained with BPR (one sampled negative) or sampled softmax (shared uniform negatives), and
stopped early on validation NDCG@10 when the training data carries a validation matrix.
torch is an optional dependency (extra ``torch``), imported when a model is fitted.

Device: the embeddings, the graph, the random generator and every index tensor of a step live on
``device``; only the fitted factors come back to the CPU (numpy). On the CPU a seed gives the same
numbers as before ``device`` was honoured; on CUDA the generator's stream differs from the CPU's
(same seed, other numbers), and sparse products need not be bit-reproducible.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from socialrec.errors import MissingDependencyError
from socialrec import topk as M
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("torch", "torch", "Graph recommenders (LightGCN, social, SocialMF)") from exc
    return torch


def _sym_normalize(adj: sp.csr_matrix) -> sp.csr_matrix:
    deg = np.asarray(adj.sum(axis=1)).ravel()
    inv = np.zeros_like(deg, dtype=np.float64)
    inv[deg > 0] = deg[deg > 0] ** -0.5
    d = sp.diags(inv)
    return (d @ adj @ d).tocsr().astype(np.float32)


def _to_torch_sparse(torch: Any, m: sp.csr_matrix, device: str) -> Any:
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    val = torch.from_numpy(coo.data.astype(np.float32))
    # COO, not CSR: on CPU the backward pass of sparse @ dense is ~10x faster with COO (measured).
    return torch.sparse_coo_tensor(idx, val, m.shape, device=device, check_invariants=True).coalesce()


def _info_nce(torch: Any, a: Any, b: Any, rows: Any, temperature: float) -> Any:
    """InfoNCE between two views of the same nodes: each node's positive is itself."""
    za = torch.nn.functional.normalize(a[rows], dim=-1)
    zb = torch.nn.functional.normalize(b[rows], dim=-1)
    logits = za @ zb.T / temperature
    return torch.nn.functional.cross_entropy(logits, torch.arange(len(rows), device=logits.device))


def validation_ndcg(user_emb: np.ndarray, item_emb: np.ndarray, train: sp.csr_matrix, valid: sp.csr_matrix,
                    k: int = 10, batch: int | None = None) -> float:
    """Mean NDCG@k on validation of embedding dot products (see `validation_ndcg_of`)."""
    return validation_ndcg_of(lambda b: user_emb[b] @ item_emb.T, train, valid, k, batch)


def validation_batch(n_items: int) -> int:
    """Users per validation chunk: 1,024 up to 32,768 items, then about 16M scores per chunk."""
    return 1024 if n_items <= 32_768 else max(16, (1 << 24) // n_items)


def validation_ndcg_of(score: Any, train: sp.csr_matrix, valid: sp.csr_matrix, k: int = 10,
                       batch: int | None = None) -> float:
    """Mean NDCG@k on validation of a ``score(users) -> (n, n_items)`` function, training items
    masked (deterministic ties: for choosing among a model's own settings, never reported)."""
    return (validation_ndcg_each(lambda b: [score(b)], train, valid, k, batch) or [0.0])[0]


def validation_ndcg_each(scores: Any, train: sp.csr_matrix, valid: sp.csr_matrix, k: int = 10,
                         batch: int | None = None) -> list[float]:
    """`validation_ndcg_of` of several candidates at once: ``scores(users)`` returns one
    (n, n_items) matrix per candidate, so work the candidates share (a matrix product) is done
    once per chunk of users."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    batch = validation_batch(train.shape[1]) if batch is None else batch
    totals: list[float] = []  # per candidate; empty without validation users
    for start in range(0, len(users), batch):
        b = users[start:start + batch]
        exclude = train[b]
        sums = [float(M.ndcg_at_k(M.hits_matrix(M.top_k_masked(np.asarray(candidate), k, exclude=exclude), valid, b),
                                  np.diff(valid.indptr)[b], k).sum()) for candidate in scores(b)]
        totals = sums if not totals else [t + s for t, s in zip(totals, sums)]
    return [total / len(users) for total in totals]


def validation_sample(valid: sp.csr_matrix, n_users: int | None, seed: int) -> sp.csr_matrix:
    """``valid`` with the rows of at most ``n_users`` of its users (a seeded random choice) kept
    and the others emptied; unchanged when it has no more users than that (or n_users is None)."""
    users = np.flatnonzero(np.diff(valid.indptr) > 0)
    if n_users is None or len(users) <= n_users:
        return valid
    keep = np.zeros(valid.shape[0], dtype=bool)
    keep[np.random.default_rng((seed, 2)).choice(users, size=n_users, replace=False)] = True
    return sp.csr_matrix(sp.diags(keep.astype(valid.dtype)) @ valid)


class _PropagationModel(BaseRecommender):
    """Shared training loop. Subclasses define the graph (`_graph`) and may add a loss term."""

    embedding_dim: int
    n_layers: int
    learning_rate: float
    l2: float
    loss: str
    n_negatives: int
    temperature: float
    batch_size: int
    epochs: int
    patience: int
    eval_every: int
    random_state: int
    device: str
    verbose: bool
    # Above this many items "full-softmax" trains with the sampled softmax (LightGCN and the social
    # model take it as a constructor argument; None: never), with this many shared negatives.
    sampled_above: int | None = None
    sampled_negatives: int = 4096
    sampled_batch_size: int = 2048
    sampled_epochs: int = 20
    sampled_patience: int = 2
    num_threads: int | None = None
    # Early stopping judges at most this many validation users (a seeded sample); None: all.
    valid_users: int | None = None

    def _graph(self, train: TrainData) -> sp.csr_matrix:
        """The normalised (n_users + n_items) square propagation matrix."""
        raise NotImplementedError

    def _extra_loss(self, torch: Any, user_ego: Any, users: Any) -> Any:
        return None

    # Validation cut-off of early stopping (NDCG@k); the multimodal models stop on NDCG@20.
    _valid_k = 10

    def _extra_parameters(self) -> list[Any]:
        """Trainable tensors besides the embedding table (created in `_prepare`), if any."""
        return []

    def _state_numpy(self, torch: Any) -> dict[str, Any]:
        """Attributes to keep from the best epoch besides the final factors (numpy arrays)."""
        return {}

    def _prepare(self, train: TrainData, torch: Any) -> None:
        """Hook for subclasses that need more tensors (e.g. the social matrix)."""

    def _check_params(self) -> None:
        if self.loss not in ("bpr", "softmax", "full-softmax"):
            raise ValueError(f"loss must be 'bpr', 'softmax' or 'full-softmax', got {self.loss!r}")
        for name in ("embedding_dim", "batch_size", "epochs", "eval_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_layers < 0:
            raise ValueError(f"n_layers must be >= 0, got {self.n_layers}")

    def _fit(self, train: TrainData) -> None:
        from socialrec.represent.finetune import torch_threads

        threads = self.num_threads if self.num_threads is not None or not self._sampled(train.n_items) else 1
        with torch_threads(threads):
            self._fit_loop(train)

    def _sampled(self, n_items: int) -> bool:
        """Whether "full-softmax" trains with the sampled softmax on a catalogue of this size."""
        return self.loss == "full-softmax" and self.sampled_above is not None and n_items > self.sampled_above

    def _fit_loop(self, train: TrainData) -> None:
        self._check_params()
        torch = _torch()
        # On the model's device: a CPU generator cannot draw into CUDA tensors. On the CPU this is
        # the generator (and stream) of torch.Generator().
        gen = torch.Generator(device=self.device).manual_seed(self.random_state)
        self._gen = gen
        rng = np.random.default_rng(self.random_state)
        n_u, n_i = train.n_users, train.n_items
        self.sampled_ = self._sampled(n_i)
        graph = self._graph(train) if self.n_layers > 0 else None
        self._adj = None if graph is None else _propagator(torch, graph, self.device, scipy=self.sampled_)
        self._prepare(train, torch)
        emb = torch.nn.Embedding(n_u + n_i, self.embedding_dim).to(self.device)
        torch.nn.init.normal_(emb.weight, std=0.1, generator=gen)
        self._emb = emb
        opt = torch.optim.Adam([*emb.parameters(), *self._extra_parameters()], lr=self.learning_rate)
        coo = train.user_items.tocoo()
        pos_u, pos_i = coo.row.astype(np.int64), coo.col.astype(np.int64)
        valid = train.valid_items
        if valid is not None:
            valid = validation_sample(sp.csr_matrix(valid), self.valid_users, self.random_state)
        if self.sampled_:
            if self.sampled_negatives < 1:
                raise ValueError(f"sampled_negatives must be >= 1, got {self.sampled_negatives}")
            self._proposal = _proposal(torch, train.user_items, self.device)
        best = (-1.0, None, 0)
        best_state: dict[str, Any] = {}
        bad_rounds = 0
        self.history_: list[dict[str, float]] = []
        start = time.perf_counter()
        n_epochs = min(self.epochs, self.sampled_epochs) if self.sampled_ else self.epochs
        epochs = tqdm(range(1, n_epochs + 1), desc=type(self).__name__, disable=not self.verbose, leave=False)
        user_items = train.user_items.tocsr()
        active_users = np.flatnonzero(np.diff(user_items.indptr) > 0)
        for epoch in epochs:
            if self.loss == "full-softmax":
                epoch_loss = self._user_softmax_epoch(torch, opt, rng, user_items, active_users, n_u)
                n_examples = len(active_users)
            else:
                epoch_loss = self._pairs_epoch(torch, opt, rng, pos_u, pos_i, n_u, n_i)
                n_examples = len(pos_u)
            record = {"epoch": epoch, "loss": epoch_loss / n_examples, "seconds": time.perf_counter() - start}
            if valid is not None and valid.nnz and epoch % self.eval_every == 0:
                u_np, i_np = self._final_numpy(torch, n_u)
                ndcg = validation_ndcg(u_np, i_np, train.user_items, valid, k=self._valid_k)
                record[f"valid_ndcg@{self._valid_k}"] = ndcg
                if ndcg > best[0]:
                    best = (ndcg, (u_np, i_np), epoch)
                    best_state = self._state_numpy(torch)
                    bad_rounds = 0
                else:
                    bad_rounds += 1
                epochs.set_postfix(ndcg=f"{ndcg:.4f}", best=best[2])
                if bad_rounds >= (self.sampled_patience if self.sampled_ else self.patience):
                    self.history_.append(record)
                    break
            self.history_.append(record)
        if best[1] is None:
            best = (float("nan"), self._final_numpy(torch, n_u), len(self.history_))
            best_state = self._state_numpy(torch)
        for name, value in best_state.items():  # what a subclass keeps of the best epoch
            setattr(self, name, value)
        self.best_epoch_ = best[2]
        self.best_valid_ndcg_ = best[0]
        self.train_seconds_ = time.perf_counter() - start
        self.seconds_per_epoch_ = self.train_seconds_ / max(1, len(self.history_))
        self.user_factors_, self.item_factors_ = best[1]
        del self._emb, self._adj, self._gen
        self.__dict__.pop("_proposal", None)
        self.__dict__.pop("_friend_mean", None)  # a training-time tensor, not part of the fitted model

    def _pairs_epoch(self, torch: Any, opt: Any, rng: np.random.Generator, pos_u: np.ndarray, pos_i: np.ndarray,
                     n_u: int, n_i: int) -> float:
        """One pass over the (user, item) pairs: BPR with one uniform negative each, or a softmax
        over the positive and ``n_negatives`` uniform negatives shared by the batch."""
        emb = self._emb
        order = rng.permutation(len(pos_u))
        total = 0.0
        for s in range(0, len(order), self.batch_size):
            b = order[s:s + self.batch_size]
            users = torch.from_numpy(pos_u[b]).to(self.device)
            items = torch.from_numpy(pos_i[b]).to(self.device)
            all_emb, cl_view = self._forward(torch)
            u_final = all_emb[users]
            i_final = all_emb[n_u + items]
            u_ego = emb.weight[users]
            i_ego = emb.weight[n_u + items]
            if self.loss == "bpr":
                neg = torch.from_numpy(rng.integers(0, n_i, size=len(b))).to(self.device)
                n_final = all_emb[n_u + neg]
                diff = (u_final * i_final).sum(-1) - (u_final * n_final).sum(-1)
                main = torch.nn.functional.softplus(-diff).mean()
                reg = (u_ego.pow(2).sum() + i_ego.pow(2).sum() + emb.weight[n_u + neg].pow(2).sum()) / len(b)
            else:
                neg = torch.from_numpy(rng.integers(0, n_i, size=self.n_negatives)).to(self.device)
                u_n = torch.nn.functional.normalize(u_final, dim=-1)
                pos_logit = (u_n * torch.nn.functional.normalize(i_final, dim=-1)).sum(-1, keepdim=True)
                neg_logit = u_n @ torch.nn.functional.normalize(all_emb[n_u + neg], dim=-1).T
                logits = torch.cat([pos_logit, neg_logit], dim=1) / self.temperature
                main = torch.nn.functional.cross_entropy(logits, torch.zeros(len(b), dtype=torch.long,
                                                                             device=logits.device))
                reg = (u_ego.pow(2).sum() + i_ego.pow(2).sum()) / len(b)
            total += self._step(torch, opt, main + self.l2 * reg, all_emb, cl_view, torch.unique(users),
                                n_u + torch.unique(items), u_ego, users) * len(b)
        return total

    def _user_softmax_epoch(self, torch: Any, opt: Any, rng: np.random.Generator, user_items: sp.csr_matrix,
                            active_users: np.ndarray, n_u: int) -> float:
        """One pass over the users: each user's softmax over every item (cosine logits over the
        temperature), averaged over the user's positives (multinomial likelihood, Liang et al. 2018).
        Exact, not sampled: affordable when items x users-per-batch fits in memory."""
        order = rng.permutation(active_users)
        total = 0.0
        batch_size = self.sampled_batch_size if self.sampled_ else self.batch_size
        for s in range(0, len(order), batch_size):
            b = order[s:s + batch_size]
            all_emb, cl_view = self._forward(torch)
            users = torch.from_numpy(b.astype(np.int64)).to(self.device)
            u_n = torch.nn.functional.normalize(all_emb[users], dim=-1)
            rows = user_items[b]
            counts = np.diff(rows.indptr)
            row_of = torch.from_numpy(np.repeat(np.arange(len(b)), counts).astype(np.int64)).to(self.device)
            cols = torch.from_numpy(rows.indices.astype(np.int64)).to(self.device)
            # Each user's mean over its positives, weighted by the interaction values (uniform on
            # binary data; play or view counts, when the matrix carries them, count for more).
            sums = np.add.reduceat(rows.data, rows.indptr[:-1]) if rows.nnz else np.zeros(len(b))
            weight = torch.from_numpy((rows.data / np.repeat(sums, counts)).astype(np.float32)).to(self.device)
            if self.sampled_:
                log_p_pos = self._sampled_log_p(torch, all_emb, u_n, rows, row_of, cols, n_u)
            else:
                i_n = torch.nn.functional.normalize(all_emb[n_u:], dim=-1)
                log_p_pos = torch.log_softmax(u_n @ i_n.T / self.temperature, dim=1)[row_of, cols]
            main = -(log_p_pos * weight).sum() / len(b)
            reg = self._emb.weight[users].pow(2).sum() / len(b) + self._emb.weight[n_u:].pow(2).sum() / user_items.shape[1]
            # The batch's items for the contrastive term, at most 4,096 (its logits are items x items).
            items_in_batch = torch.from_numpy(np.unique(rows.indices)[:4096].astype(np.int64)).to(self.device)
            total += self._step(torch, opt, main + self.l2 * reg, all_emb, cl_view, users, n_u + items_in_batch,
                                self._emb.weight[users], users) * len(b)
        return total

    def _sampled_log_p(self, torch: Any, all_emb: Any, u_n: Any, rows: sp.csr_matrix, row_of: Any, cols: Any,
                       n_u: int) -> Any:
        """Sampled softmax with logQ correction (Bengio & Senecal 2008; Yi et al. 2019) in place
        of the softmax over every item: each positive competes with ``sampled_negatives`` items
        drawn for the whole batch from the proposal q (`_proposal`), every logit less log of its
        expected count under q; a drawn item that is one of the user's own positives is left out
        (an accidental hit). Returns the log-probability of each positive (row_of, cols)."""
        q, log_q = self._proposal
        neg = torch.multinomial(q, self.sampled_negatives, replacement=True, generator=self._gen)
        log_count = log_q + float(np.log(self.sampled_negatives))
        pos_e = torch.nn.functional.normalize(all_emb[n_u + cols], dim=-1)
        neg_e = torch.nn.functional.normalize(all_emb[n_u + neg], dim=-1)
        pos_logit = (u_n[row_of] * pos_e).sum(-1) / self.temperature - log_count[cols]
        neg_logit = u_n @ neg_e.T / self.temperature - log_count[neg][None, :]
        hit = torch.from_numpy(_accidental_hits(rows, neg.cpu().numpy())).to(u_n.device)
        neg_logit = neg_logit.masked_fill(hit, float("-inf"))
        rest = torch.logsumexp(neg_logit, dim=1)[row_of]
        return pos_logit - torch.logaddexp(pos_logit, rest)

    def _forward(self, torch: Any) -> tuple[Any, Any]:
        """All final embeddings, and the contrastive view when contrastive regularisation is on."""
        if self._cl_weight() > 0:
            return self._propagate(torch, noisy=True)
        return self._propagate(torch), None

    def _step(self, torch: Any, opt: Any, loss: Any, all_emb: Any, cl_view: Any, cl_users: Any, cl_nodes: Any,
              user_ego: Any, users: Any) -> float:
        """Add the contrastive and subclass terms to a batch's loss, take the optimiser step, and
        return the loss. ``cl_nodes``: the batch's item rows (already offset by the user count)."""
        if cl_view is not None:
            loss = loss + self._cl_weight() * (_info_nce(torch, all_emb, cl_view, cl_users, self.cl_temperature)
                                               + _info_nce(torch, all_emb, cl_view, cl_nodes, self.cl_temperature))
        extra = self._extra_loss(torch, user_ego, users)
        if extra is not None:
            loss = loss + extra
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    def _cl_weight(self) -> float:
        return float(getattr(self, "cl_weight", 0.0))

    def _propagate(self, torch: Any, noisy: bool = False) -> Any:
        """Mean of the layer outputs. With ``noisy`` (XSimGCL, Yu et al. 2023) each layer gets a
        small random perturbation and the first layer is returned too, as the contrastive view."""
        x = self._emb.weight
        if self._adj is None:
            x = self._readout(torch, x)
            return (x, x) if noisy else x
        layers = [x]
        view = x
        for layer in range(self.n_layers):
            x = self._adj(x)
            if noisy:
                noise = torch.nn.functional.normalize(torch.rand(x.shape, generator=self._gen, device=x.device),
                                                      dim=-1)
                x = x + torch.sign(x) * noise * self.noise_eps
                if layer == 0:
                    view = x
            layers.append(x)
        final = self._readout(torch, torch.stack(layers, dim=0).mean(dim=0))
        return (final, view) if noisy else final

    def _readout(self, torch: Any, final: Any) -> Any:
        """Hook on the final embeddings (identity here; the social model diffuses over friends)."""
        return final

    def _final_numpy(self, torch: Any, n_u: int) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            all_emb = self._propagate(torch).cpu().numpy().astype(np.float32)
        u, i = all_emb[:n_u].copy(), all_emb[n_u:].copy()
        if self.loss in ("softmax", "full-softmax"):  # trained on cosine: rank by cosine too
            u /= np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-12)
            i /= np.maximum(np.linalg.norm(i, axis=1, keepdims=True), 1e-12)
        return u, i

    def _score(self, users: np.ndarray) -> np.ndarray:
        return dot_scores(self.user_factors_[users], float64_copy(self, "item_factors_"))

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        f = self.item_factors_
        norms = np.maximum(np.linalg.norm(f, axis=1), 1e-12)
        return dot_scores(f[items] / norms[items, None], f / norms[:, None])

    # --- fold-in ("aggregate") -------------------------------------------------------
    # A folded-in user's vector is LightGCN's aggregation read off the fitted final vectors:
    # sum_i r_ui v_i / sqrt(d_i) over their items (d_i: the item's degree in the graph), plus,
    # in the social models, ``social_weight`` * sum_f w_f / sqrt(d_f) over their friends (out-
    # and in-edges; d_f: the friend's degree in the joint graph). Its direction is kept: unit length
    # for the cosine-trained losses, the median norm of the fitted users' vectors for BPR (a
    # user's ranking does not depend on the norm; features built from scores do). The item
    # side and the other users' vectors do not move.
    fold_in = "aggregate"

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        from socialrec.retrieve.fold_in import aggregate_users, grow_rows

        old = self.user_factors_
        rows = self.user_items_[users]
        item_degree = np.asarray(self.user_items_.sum(axis=0)).ravel()  # as in the training graph
        friends, friend_degree, friend_weight = self._fold_in_friends(users, social)
        factors = grow_rows(old, self.n_users_).copy()
        agg = aggregate_users(self.item_factors_, rows, item_degree, factors, friends, friend_degree, friend_weight)
        scale = 1.0
        if self.loss == "bpr":
            fitted = np.diff(self.user_items_.indptr)[:len(old)] > 0
            fitted[users[users < len(old)]] = False
            scale = float(np.median(np.linalg.norm(old[fitted], axis=1))) if fitted.any() else 1.0
        agg = self._fold_in_readout(_unit_rows(agg) * scale, friends, factors)
        if self.loss != "bpr":
            agg = _unit_rows(agg)
        factors[users] = agg.astype(factors.dtype)
        self.user_factors_ = factors

    def _fold_in_friends(self, users: np.ndarray, social: sp.csr_matrix | None
                         ) -> tuple[sp.csr_matrix | None, np.ndarray | None, float]:
        """(friends' rows, friends' joint-graph degrees, weight of friends) for the aggregate;
        models without a social graph have none."""
        return None, None, 0.0

    def _fold_in_readout(self, agg: np.ndarray, friends: sp.csr_matrix | None, factors: np.ndarray) -> np.ndarray:
        """Hook on the scaled aggregate (the social models add their friends' mean)."""
        return agg


def _accidental_hits(rows: sp.csr_matrix, drawn: np.ndarray) -> np.ndarray:
    """(n_rows, n_drawn) bool: whether drawn column j is one of row r's stored items. Each stored
    item is looked up among the sorted draws (not each draw among the items: a batch holds far
    more draws x rows than stored items)."""
    hit = np.zeros((rows.shape[0], len(drawn)), dtype=bool)
    order = np.argsort(drawn, kind="stable")
    ranked = drawn[order]
    lo = np.searchsorted(ranked, rows.indices, side="left")
    count = np.searchsorted(ranked, rows.indices, side="right") - lo
    found = count > 0
    if found.any():
        row_of = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr))[found]
        count, lo = count[found], lo[found]
        # Every draw position in [lo, lo + count) for each found item.
        offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        hit[np.repeat(row_of, count), order[np.repeat(lo, count) + offsets]] = True
    return hit


def _propagator(torch: Any, graph: sp.csr_matrix, device: str, *, scipy: bool) -> Any:
    """``x -> graph @ x`` with gradients. With ``scipy`` on the CPU, scipy's CSR products serve
    both passes (forward ``graph @ x``, backward ``graph.T @ g``): faster than torch's sparse COO
    forward and backward on the CPU, one of the changes behind benchmarks/scale.py's lightgcn
    and social rows. Otherwise torch's sparse product, as before (the exact-softmax path's numbers
    stay bitwise the same)."""
    if not (scipy and torch.device(device).type == "cpu"):
        adj = _to_torch_sparse(torch, graph, device)
        return lambda x: torch.sparse.mm(adj, x)
    matrix = sp.csr_matrix(graph, dtype=np.float32)
    transposed = matrix.T.tocsr()

    class SymmetricProduct(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, x: Any) -> Any:
            return torch.from_numpy(np.asarray(matrix @ x.detach().numpy()))

        @staticmethod
        def backward(ctx: Any, grad: Any) -> Any:
            return torch.from_numpy(np.asarray(transposed @ grad.contiguous().numpy()))

    return SymmetricProduct.apply


def _proposal(torch: Any, user_items: sp.csr_matrix, device: str) -> tuple[Any, Any]:
    """The sampled softmax's proposal over items and its log: half uniform, half in proportion to
    the item's training users (popular items are the informative negatives; the uniform half
    keeps every item drawable)."""
    counts = np.diff(sp.csr_matrix(user_items).tocsc().indptr).astype(np.float64)
    n_i = len(counts)
    q = 0.5 / n_i + (0.5 * counts / counts.sum() if counts.sum() > 0 else 0.5 / n_i)
    q_t = torch.from_numpy(q.astype(np.float32)).to(device)
    return q_t, torch.log(q_t)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _friends_mean(friends: sp.csr_matrix, factors: np.ndarray) -> np.ndarray:
    """Each row's mean of its friends' vectors (zero without friends)."""
    deg = np.asarray(friends.sum(axis=1)).ravel()
    inv = np.where(deg > 0, 1.0 / np.maximum(deg, 1e-12), 0.0)
    return np.asarray(sp.diags(inv) @ (friends @ factors.astype(np.float64)))


_COMMON_DOC = """
    embedding_dim, n_layers: embedding size and propagation depth (0 layers = plain MF).
    learning_rate, l2: Adam step and L2 weight on the batch's ego embeddings.
    loss: "bpr" (one uniform negative per positive), "softmax" (``n_negatives`` shared uniform
        negatives, cosine logits divided by ``temperature``) or "full-softmax" (each user's
        softmax over every item, averaged over the user's positives: exact, no sampling).
    batch_size, epochs: training batches (pairs; users with "full-softmax"); at most ``epochs``
        passes over the interactions (over the users with "full-softmax").
    patience, eval_every: stop after ``patience`` validation rounds (every ``eval_every``
        epochs) without a better NDCG@10; the best epoch's embeddings are kept.
    random_state: seeds initialisation and sampling. device: "cpu" or "cuda".
    cl_weight, noise_eps, cl_temperature: XSimGCL-style contrastive regularisation (off when
        cl_weight is 0): noise of size ``noise_eps`` per layer, InfoNCE between the final and
        the first-layer embeddings of the batch's users and items.
"""

_SCALE_DOC = """    sampled_above: with "full-softmax", a catalogue of more items than this trains with the sampled
        softmax instead (``sampled_negatives`` negatives per batch from a half-uniform, half-
        popularity proposal, logQ-corrected; ``sampled_`` says which ran); None: always exact.
    sampled_batch_size, sampled_epochs: users per batch and most epochs with the sampled softmax
        (each step propagates over the whole graph, so larger batches cost little more).
    sampled_patience: ``patience`` with the sampled softmax. On the synthetic 300k-item catalogue
        (and a 60k-item one) validation NDCG@10 peaked after about ten steps at the default
        learning rate (the first epoch) and fell in each later epoch; a 4x larger batch peaked
        later and lower, and learning rates of 0.001 and 0.0005 rose slowly to lower peaks.
        Epochs are the cost there, so two without progress are enough to stop.
    valid_users: early stopping judges at most this many validation users (a seeded sample);
        None: all of them.
    num_threads: torch threads while fitting; None: torch's setting for the exact softmax, 1 for
        the sampled one (its small products: on the shared 2-core machine an epoch took 7x
        longer with torch's default threads, which spin-wait for each other).
"""


class LightGCN(_PropagationModel):
    __doc__ = ("LightGCN (He et al. 2020): linear propagation over the user-item graph. Defaults were "
               "chosen on LastFM validation: the full softmax over items with cosine logits at temperature "
               "0.15 and 128 dimensions reached validation NDCG@10 .190 (0.12: .192; results/social-"
               "lastfm-recbole.json) against .185 for BPR with XSimGCL-style contrastive regularisation, "
               "the earlier default (results/social-train-time-lastfm-recbole.json). In exploratory "
               "runs (not recorded) temperature mattered most, and contrastive terms and a third layer "
               "hurt. It stops after 30-60 epochs.\n" + _COMMON_DOC + _SCALE_DOC)

    def __init__(self, embedding_dim: int = 128, n_layers: int = 2, learning_rate: float = 0.005, l2: float = 1e-4,
                 loss: str = "full-softmax", n_negatives: int = 256, temperature: float = 0.15,
                 batch_size: int = 256, epochs: int = 300, patience: int = 5, eval_every: int = 1,
                 random_state: int = 0, device: str = "cpu", verbose: bool = False, noise_eps: float = 0.1,
                 cl_weight: float = 0.0, cl_temperature: float = 0.2, sampled_above: int | None = 100_000,
                 sampled_negatives: int = 4096, sampled_batch_size: int = 2048, sampled_epochs: int = 20,
                 valid_users: int | None = 3000, num_threads: int | None = None, sampled_patience: int = 2) -> None:
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
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
        self.noise_eps = noise_eps
        self.cl_weight = cl_weight
        self.cl_temperature = cl_temperature
        self.sampled_above = sampled_above
        self.sampled_negatives = sampled_negatives
        self.sampled_batch_size = sampled_batch_size
        self.sampled_epochs = sampled_epochs
        self.valid_users = valid_users
        self.num_threads = num_threads
        self.sampled_patience = sampled_patience

    def _graph(self, train: TrainData) -> sp.csr_matrix:
        r = train.user_items.astype(np.float32)
        return _sym_normalize(sp.bmat([[None, r], [r.T, None]], format="csr"))


def _social_matrix(train: TrainData) -> sp.csr_matrix:
    if train.dataset is None or len(train.dataset.social) == 0:
        raise ValueError("this model needs a social graph: fit it with TrainData whose dataset has social edges "
                         "(Split.train_data() passes the dataset along)")
    return train.dataset.social_matrix(symmetric=True)


def _directed_social(train: TrainData) -> sp.csr_matrix:
    """The social edges as stored (out-edges per row), 0/1: what a fold-in replaces rows of."""
    _social_matrix(train)  # the same error without a graph
    return train.dataset.social_matrix(symmetric=False)  # type: ignore[union-attr]


def _fold_in_social(model: Any, users: np.ndarray, social: sp.csr_matrix | None) -> sp.csr_matrix:
    """A social model's fold-in of the graph: the stored out-edges of ``users`` replaced by the
    ``social`` rows when given (grown to the model's users either way); returns the users'
    friends as the symmetric training graph has them (out- and in-edges)."""
    from socialrec.retrieve.fold_in import replace_social_rows, social_rows, undirected_rows

    given = None if social is None else social_rows(social, model.n_users_)
    model.social_ = replace_social_rows(model.social_, users, given)
    return undirected_rows(model.social_, users)


_NEIGHBOURHOOD_DOC = """    neighborhood_weight: weight of a parameter-free neighbourhood term added to the cosine
        score: one propagation step over the user-user graph of co-interaction neighbours (cosine
        with shrinkage, top ``neighbors`` per user) plus trust/friend edges (``neighborhood_trust``
        times the row-normalised social matrix), then over the user-item graph; each user's row is
        scaled to a maximum of 1. It carries the signal where items have too few interactions
        for their learned embeddings to be reliable (Ciao: 1.5 training interactions per item).
    neighborhood_grid: further weights; with validation items the best of ``neighborhood_weight``
        and these is chosen on validation NDCG@10 after training (``neighborhood_weight_``).
    neighbors, neighborhood_shrink, neighborhood_trust: the neighbourhood graph (see above).
"""


def social_neighborhood(user_items: sp.csr_matrix, social: sp.csr_matrix, *, neighbors: int, shrink: float,
                        trust: float) -> sp.csr_matrix:
    """(n_users, n_users) weights: each user's top ``neighbors`` co-interaction neighbours by cosine
    with shrinkage, plus ``trust`` times the row-normalised social matrix."""
    from socialrec.retrieve.knn import cosine_topk

    from socialrec.represent.graph import normalize_rows

    sim = cosine_topk(sp.csr_matrix(user_items.T, dtype=np.float32), neighbors=neighbors, shrink=shrink)
    # Dataset.social_matrix is already 0/1 without self-loops (ingest drops them).
    return (sim.astype(np.float64) + trust * normalize_rows(sp.csr_matrix(social, dtype=np.float64))).tocsr()


class SocialLightGCN(LightGCN):
    __doc__ = (
        "LightGCN over a joint graph where users also link to their friends (SocialLGN family), "
        "with DiffNet-style influence diffusion at the read-out: a user's final vector adds "
        "``social_readout`` times the mean of their friends' final vectors.\n" + _COMMON_DOC
        + "    social_weight: weight of user-user edges relative to user-item edges in propagation.\n"
        + "    social_readout: weight of the friends' mean at the read-out (0 disables).\n"
        + _NEIGHBOURHOOD_DOC + _SCALE_DOC)

    def __init__(self, embedding_dim: int = 128, n_layers: int = 2, learning_rate: float = 0.005, l2: float = 1e-4,
                 loss: str = "full-softmax", n_negatives: int = 256, temperature: float = 0.15,
                 batch_size: int = 256, epochs: int = 300, patience: int = 5, eval_every: int = 1,
                 random_state: int = 0, device: str = "cpu", verbose: bool = False, noise_eps: float = 0.1,
                 cl_weight: float = 0.0, cl_temperature: float = 0.2, social_weight: float = 0.3, social_readout: float = 0.0,
                 neighborhood_weight: float = 0.0, neighborhood_grid: tuple[float, ...] = (), neighbors: int = 200,
                 neighborhood_shrink: float = 10.0, neighborhood_trust: float = 0.2,
                 sampled_above: int | None = 100_000, sampled_negatives: int = 4096, sampled_batch_size: int = 2048,
                 sampled_epochs: int = 20, valid_users: int | None = 3000, num_threads: int | None = None,
                 sampled_patience: int = 2) -> None:
        super().__init__(embedding_dim, n_layers, learning_rate, l2, loss, n_negatives, temperature, batch_size,
                         epochs, patience, eval_every, random_state, device, verbose, noise_eps, cl_weight,
                         cl_temperature, sampled_above, sampled_negatives, sampled_batch_size, sampled_epochs,
                         valid_users, num_threads, sampled_patience)
        self.social_weight = social_weight
        self.social_readout = social_readout
        self.neighborhood_weight = neighborhood_weight
        self.neighborhood_grid = neighborhood_grid
        self.neighbors = neighbors
        self.neighborhood_shrink = neighborhood_shrink
        self.neighborhood_trust = neighborhood_trust

    def _fit(self, train: TrainData) -> None:
        weights = (float(self.neighborhood_weight), *map(float, self.neighborhood_grid))
        if min(weights) < 0:
            raise ValueError(f"neighborhood_weight and neighborhood_grid must be >= 0, got {weights}")
        if self.neighbors < 1:
            raise ValueError(f"neighbors must be >= 1, got {self.neighbors}")
        if self.neighborhood_trust < 0:
            raise ValueError(f"neighborhood_trust must be >= 0, got {self.neighborhood_trust}")
        super()._fit(train)
        self.social_ = _directed_social(train)  # the graph a fold-in updates
        self.neighborhood_weight_ = weights[0]
        self.neighborhood_: sp.csr_matrix | None = None
        if max(weights) == 0:
            return
        self.neighborhood_ = social_neighborhood(train.user_items, _social_matrix(train), neighbors=self.neighbors,
                                                 shrink=self.neighborhood_shrink, trust=self.neighborhood_trust)
        valid = train.valid_items
        if len(set(weights)) > 1 and valid is not None and valid.nnz:
            # Chosen like the epoch: on validation NDCG@10 (the same user sample), after training
            # (no refit per weight).
            valid = validation_sample(sp.csr_matrix(valid), self.valid_users, self.random_state)
            grid = sorted(set(weights))
            ndcgs = validation_ndcg_each(lambda b: self._scores_by_weight(b, grid), train.user_items, valid)
            self.neighborhood_validation_ = dict(zip(grid, ndcgs))
            self.neighborhood_weight_ = max(self.neighborhood_validation_, key=self.neighborhood_validation_.get)
        if self.neighborhood_weight_ == 0:
            self.neighborhood_ = None

    def fit_choices(self) -> dict[str, Any]:
        """What fit chose on validation: the epoch and the neighbourhood weight (with each
        weight's validation NDCG@10 when a grid was tried)."""
        self._check_fitted("fit_choices")
        return {"best_epoch": self.best_epoch_, "neighborhood_weight": self.neighborhood_weight_,
                "neighborhood_validation": getattr(self, "neighborhood_validation_", None)}

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.neighborhood_ is None or self.neighborhood_weight_ == 0:
            return super()._score(users)
        return self._scores_by_weight(users, [self.neighborhood_weight_])[0]

    def _scores_by_weight(self, users: np.ndarray, weights: list[float]) -> list[np.ndarray]:
        """The users' scores at each neighbourhood weight; the two parts are computed once."""
        scores = super()._score(users)
        neighborhood = self._neighborhood_scores(users) if any(weights) else None
        return [scores if w == 0 else (scores + w * neighborhood).astype(np.float32) for w in weights]

    def _neighborhood_scores(self, users: np.ndarray) -> np.ndarray:
        """Items of the user's neighbours (co-interaction kNN plus trusted users), each row scaled
        to a maximum of 1 so that one weight fits users of every activity level."""
        x = (self.neighborhood_[users] @ self.user_items_).toarray().astype(np.float64)
        top = x.max(axis=1, keepdims=True)
        return x / np.where(top > 0, top, 1.0)

    def _graph(self, train: TrainData) -> sp.csr_matrix:
        r = train.user_items.astype(np.float32)
        s = _social_matrix(train).astype(np.float32) * self.social_weight
        return _sym_normalize(sp.bmat([[s, r], [r.T, None]], format="csr"))

    def _prepare(self, train: TrainData, torch: Any) -> None:
        self._friend_mean = None
        if self.social_readout:
            s = _social_matrix(train)
            deg = np.asarray(s.sum(axis=1)).ravel()
            inv = np.zeros_like(deg)
            inv[deg > 0] = 1.0 / deg[deg > 0]
            self._friend_mean = _to_torch_sparse(torch, (sp.diags(inv) @ s).tocsr(), self.device)

    def _readout(self, torch: Any, final: Any) -> Any:
        if self._friend_mean is None:
            return final
        n_u = self._friend_mean.shape[0]
        users = final[:n_u] + self.social_readout * torch.sparse.mm(self._friend_mean, final[:n_u])
        return torch.cat([users, final[n_u:]], dim=0)

    # --- fold-in: the aggregate over items and friends (see _PropagationModel), the friends'
    # mean at the read-out, and the user's neighbourhood row found anew ------------------
    def _fold_in_friends(self, users: np.ndarray, social: sp.csr_matrix | None
                         ) -> tuple[sp.csr_matrix | None, np.ndarray | None, float]:
        friends = _fold_in_social(self, users, social)
        sym = self.social_.maximum(self.social_.T)
        degree = np.asarray(self.user_items_.sum(axis=1)).ravel() + self.social_weight * np.asarray(
            (sym > 0).sum(axis=1)).ravel()
        return friends, degree, float(self.social_weight)

    def _fold_in_readout(self, agg: np.ndarray, friends: sp.csr_matrix | None, factors: np.ndarray) -> np.ndarray:
        if not self.social_readout or friends is None:
            return agg
        return agg + self.social_readout * _friends_mean(friends, factors)

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        super()._fold_in_users(users, social)
        if self.neighborhood_ is None:
            return
        from socialrec.represent.graph import normalize_rows
        from socialrec.retrieve.fold_in import grow_square, undirected_rows
        from socialrec.sparse import replace_rows
        from socialrec.retrieve.knn import cosine_topk_rows

        sim = cosine_topk_rows(self.user_items_, users, neighbors=self.neighbors, shrink=self.neighborhood_shrink)
        trust = normalize_rows(sp.csr_matrix(undirected_rows(self.social_, users), dtype=np.float64))
        rows = (sim.astype(np.float64) + self.neighborhood_trust * trust).tocsr()
        self.neighborhood_ = replace_rows(grow_square(self.neighborhood_, self.n_users_), users, rows)


class SocialMF(_PropagationModel):
    __doc__ = (
        "Matrix factorisation with social regularisation (Jamali & Ester 2010, trained with BPR): "
        "a user's vector is pulled towards the mean of their friends' vectors.\n" + _COMMON_DOC
        + "    social_reg: weight of the squared distance to the friends' mean.\n")

    def __init__(self, embedding_dim: int = 64, learning_rate: float = 0.005, l2: float = 1e-4, loss: str = "bpr",
                 n_negatives: int = 256, temperature: float = 0.1, batch_size: int = 4096, epochs: int = 300,
                 patience: int = 5, eval_every: int = 5, random_state: int = 0, device: str = "cpu",
                 verbose: bool = False, social_reg: float = 0.1) -> None:
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
        self.social_reg = social_reg

    @property
    def n_layers(self) -> int:  # plain MF: no propagation
        return 0

    def _graph(self, train: TrainData) -> sp.csr_matrix:  # pragma: no cover - n_layers is 0
        raise NotImplementedError

    def _prepare(self, train: TrainData, torch: Any) -> None:
        s = _social_matrix(train)
        deg = np.asarray(s.sum(axis=1)).ravel()
        inv = np.zeros_like(deg)
        inv[deg > 0] = 1.0 / deg[deg > 0]
        self._friends_mean = _to_torch_sparse(torch, (sp.diags(inv) @ s).tocsr(), self.device)
        self._has_friends = torch.from_numpy(deg > 0).to(self.device)

    def _extra_loss(self, torch: Any, user_ego: Any, users: Any) -> Any:
        n_u = self._friends_mean.shape[0]
        mean = torch.sparse.mm(self._friends_mean, self._emb.weight[:n_u])[users]
        gap = (user_ego - mean).pow(2).sum(-1) * self._has_friends[users].float()
        return self.social_reg * gap.mean()

    def _fit(self, train: TrainData) -> None:
        super()._fit(train)
        self.social_ = _directed_social(train)  # the graph a fold-in updates
        for name in ("_friends_mean", "_has_friends"):  # training-time tensors, not the fitted model
            self.__dict__.pop(name, None)

    # --- fold-in: the item aggregate (see _PropagationModel) pulled towards the friends' mean
    # as the training loss pulls it: argmin |u - a|^2 + social_reg |u - mean|^2 ---------------
    def _fold_in_friends(self, users: np.ndarray, social: sp.csr_matrix | None
                         ) -> tuple[sp.csr_matrix | None, np.ndarray | None, float]:
        return _fold_in_social(self, users, social), None, 0.0

    def _fold_in_readout(self, agg: np.ndarray, friends: sp.csr_matrix | None, factors: np.ndarray) -> np.ndarray:
        if friends is None or not self.social_reg:
            return agg
        has = np.asarray(friends.sum(axis=1)).ravel() > 0
        pulled = (agg + self.social_reg * _friends_mean(friends, factors)) / (1.0 + self.social_reg)
        return np.where(has[:, None], pulled, agg)

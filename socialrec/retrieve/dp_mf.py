"""Matrix factorisation with differential privacy (DP-SGD through Opacus), user-level or
interaction-level (``DPMF(privacy_unit=...)``), and its non-private twin trained the same way.

The model is a history-based ("asymmetric") factorisation: item ``i`` has an input vector
``q_i``, an output vector ``p_i`` and a bias ``b_i``; a user is represented by their history,

    user(u) = sum_{j in H_u} q_j / sqrt(|H_u|),     score(u, i) = user(u) . p_i + b_i,

so the model has no per-user parameters. It is trained as a multinomial model of each user's
items (full softmax over the catalog, so every unseen item is a negative and no negatives are
sampled): in each step every sampled user's history is split at random into an input part
(``input_share`` of the items) and a target part, and the loss is the cross-entropy between the
softmax of the input's scores and the target items (uniform over them). Splitting keeps an item
out of the input it is asked to predict, so the model cannot learn to echo the history.

Privacy unit "user" (`DPMF`, the default): a record is a **user**, with all of their interactions (user-level DP,
stronger than per-interaction DP). Two releases touch the data, and one budget covers both:
1. item popularity counts, each user adding their unit-norm row (L2 sensitivity 1), with
   Gaussian noise (a ``popularity_share`` of the budget): they choose the modelled head of the
   catalog (``max_items``), initialise the item biases and rank the tail below the head;
2. DP-SGD: users are Poisson-sampled, each example is one user's whole history so clipping its
   gradient to ``max_grad_norm`` bounds what the user can change (Opacus' ghost clipping: the
   per-example norms of the linear layers are computed without materialising per-example
   gradients), and Gaussian noise is added; the noise multiplier is calibrated with
   ``make_private_with_epsilon`` to the epsilon left after the counts.
The RDP (or PRV) accountant composes both at ``delta`` (1 / n_users by default); after fit,
``epsilon_``/``delta_`` (and `privacy_spent()`) hold what it spent. Every fitted parameter (head,
noisy counts, item vectors and biases) is (epsilon, delta)-DP with respect to any one user.
Choosing hyperparameters by comparing several private fits on validation data is a further use
of the data that this accounting does not cover. With ``average`` > 0 the fitted parameters are
the exponential moving average of the DP-SGD iterates: a function of the released (noisy) iterates
alone, i.e. post-processing, so it spends nothing (both units). The PRV accountant
(``accountant="prv"``) accounts for the same mechanisms more tightly than RDP (numerically, with a
stated error bound that Opacus folds into the epsilon it reports), so for the same target epsilon
the calibrated noise is smaller.

What is not covered: a user's own recommendations are computed from their own stored history
(``user_items_``, which every recommender keeps to mask seen items) and the DP item side; that
is post-processing of DP parameters with the user's own data, so the recommendations shown to
any *other* user are DP with respect to that user (joint differential privacy, the standard
guarantee for private recommenders). The stored history itself is personal data, handled as
the rest of the store is (deletion, export), not by DP.

Privacy unit "interaction" (`DPMF(privacy_unit="interaction")`): a record is **one (user, item)
interaction**. The guarantee: every fitted parameter (head, noisy counts, item vectors and biases,
and the trained user embeddings) is (epsilon, delta)-DP with respect to adding or removing any
single interaction. It does NOT protect a user's whole history: a user with k interactions gets
only group privacy (about k * epsilon, with delta growing with k), which for LastFM-sized
histories (tens of items) is no meaningful protection of "who is this user". It is a weaker
guarantee than the user unit, chosen when what must stay deniable is one listen, one purchase.
A different model is trained, because the history-based model above cannot give this bound: if
a user is the sum of their items' vectors, interaction (u, j) is in the *input* of every other
example (u, i) of that user, so clipping example (u, j)'s gradient does not bound what (u, j)
changes. Instead the model is classical MF with a per-user embedding ``e_u`` and per-item output
vectors and biases, score(u, i) = e_u . p_i + b_i, and an example is one interaction with the
full-softmax loss -log softmax_head(e_u . P + b)[i]: its output depends on its own (u, i) and the
current parameters only (no sampled negatives drawn from the data, no other interaction), so
1. the noisy item counts: one interaction adds 1 to one count (L2 sensitivity 1; raw counts, not
   the user unit's unit-norm rows), Gaussian noise from a ``popularity_share`` of the budget;
2. DP-SGD over the interactions: Poisson sampling of interactions at rate batch_size /
   n_interactions, each interaction's gradient over ALL trained parameters (its user's
   embedding row, the item vectors and biases) clipped to ``max_grad_norm`` (Opacus ghost
   clipping: Embedding and Linear norm samplers), Gaussian noise added to all of them, the user
   embedding table included. Interactions of the same user interact only through the
   parameters, which are the outputs of earlier noisy steps: adaptive composition covers that.
   Interactions with items outside the DP-chosen head stay records (sampled, counted in
   n_interactions) with an ignored target: zero loss, zero gradient.
The accountant composes both at ``delta`` = min(1 / n_interactions, 1 / n_users) by default
(the issue's "delta <= 1 / n_users" is read as "at most 1 / (number of records) and at most
1 / n_users": with interactions as records the first is the binding one). The alternative of
keeping user embeddings as un-noised private state (joint DP, clipping only the item-side
gradient) was rejected: a user embedding trained on (u, j) carries (u, j) into the item
gradients of the user's other examples, outside any clipping, so the item side would not be
DP per interaction.
Scoring (joint DP): the trained user embeddings are noisy training scaffolding; each user's
scoring vector is solved against the fixed DP item side from their own history alone (the same
softmax loss plus ``user_l2`` * |u|^2, L-BFGS from zero; ``user_factors_``). That is
post-processing of DP parameters with the user's own data, so what any *other* user is shown
stays DP with respect to the interaction; folding a user in ("solve") does the same and spends
nothing. On LastFM's validation part the solved vectors beat the trained embeddings clearly.

Fold-in ("aggregate", the user unit): a user's vector is an aggregate of the fixed item input vectors of their
items, so `partial_fit_users` only stores the new rows. It changes no parameter, so it spends no
privacy budget and the accountant's (epsilon, delta) still holds for the item side; a refit on
data with new users is a new private release, with its own budget.

Device: the parameters, the random generator, the noise generator and every batch tensor live
on ``device`` ("cpu" or "cuda"); the Poisson sampling of users runs on a CPU generator (it
draws indices, not tensors of the model); the fitted item side comes back to numpy.
torch and opacus are optional dependencies (extras ``torch`` and ``privacy-dp``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import MissingDependencyError
from socialrec.represent.finetune import ParameterAverage
from socialrec.retrieve.base import BaseRecommender, TrainData, dot_scores, float64_copy


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("torch", "torch", "Matrix factorisation (mf, dp-mf)") from exc
    return torch


def _opacus() -> Any:
    try:
        import opacus
    except ImportError as exc:  # pragma: no cover - only without the extra
        raise MissingDependencyError("opacus", "privacy-dp", "Differentially private training (dp-mf)") from exc
    return opacus


def _quiet_accountant() -> None:
    """Inside ``warnings.catch_warnings()``: silence the accountants' harmless warnings. RDP: at the
    edges of its orders the bound is looser than it could be (never looser than stated, so the
    spent epsilon is conservative). PRV: with full batches (sample rate 1) it takes log(0) in a
    branch that np.where then discards."""
    warnings.filterwarnings("ignore", message="Optimal order is the")
    warnings.filterwarnings("ignore", message="divide by zero encountered in log", category=RuntimeWarning,
                            module=r"opacus\.accountants")


class PrivacySpent(tuple):  # type: ignore[type-arg]
    """``(epsilon, delta)``, a plain pair (it unpacks and compares as one), with ``unit``: what a
    record of the guarantee is ("user": a user and all of their interactions; "interaction": one
    (user, item) interaction; None: no DP)."""

    unit: str | None

    def __new__(cls, epsilon: float, delta: float, unit: str | None) -> "PrivacySpent":
        self = super().__new__(cls, (epsilon, delta))
        self.unit = unit
        return self

    @property
    def epsilon(self) -> float:
        return float(self[0])

    @property
    def delta(self) -> float:
        return float(self[1])

    def __repr__(self) -> str:
        return f"PrivacySpent(epsilon={self[0]!r}, delta={self[1]!r}, unit={self.unit!r})"


def check_budget(target_epsilon: float | None, delta: float | None, delta_default: str = "1 / n_users") -> None:
    """Refuse a privacy budget no fit can spend: epsilon must be > 0 (None: no DP, the non-private
    twin), delta in (0, 1) (None: ``delta_default``, named in the error)."""
    if target_epsilon is not None and not target_epsilon > 0:
        raise ValueError(f"target_epsilon must be > 0 (or None for the non-private twin), got {target_epsilon}")
    if delta is not None and not 0.0 < delta < 1.0:
        raise ValueError(f"delta must be in (0, 1) or None ({delta_default}), got {delta}")


def _normalised_rows(rows: sp.csr_matrix) -> sp.csr_matrix:
    """Binary rows scaled to unit L2 norm (empty rows stay empty)."""
    r = sp.csr_matrix(rows, dtype=np.float64, copy=True)
    r.data[:] = 1.0
    counts = np.diff(r.indptr)
    scale = np.zeros(len(counts))
    scale[counts > 0] = counts[counts > 0] ** -0.5
    return sp.csr_matrix(sp.diags(scale) @ r)


class MF(BaseRecommender):
    """History-based matrix factorisation trained with Adam on the full-softmax loss, without
    noise or clipping: the non-private twin of `DPMF` (see the module docstring).

    factors: dimension of the item vectors.
    learning_rate, l2: Adam's step size and weight decay.
    epochs: passes over the users (a fixed number: `DPMF` accounts for every step).
    batch_size: users per step (`DPMF`: the expected size of a Poisson-sampled batch); None: all
        users in every step (full batch; for DP-SGD the fewest, least noisy steps).
    input_share: share of a user's items used as input in a training step (the rest are targets).
    init_std: standard deviation of the normal initialisation of the item vectors.
    max_items: model only the this many most popular items (None: all). Popularity counts each
        user once with weight 1 / sqrt(|history|) (unit-norm rows); `DPMF` releases the counts
        with Gaussian noise and pays for it from its budget. Items outside the head are ranked
        below every head item, by their (noisy) popularity.
    learn_bias: train the item biases (initialised at the log popularity counts); False keeps
        them there, so that (for `DPMF`) each user's clipped gradient goes to the item vectors.
    tied: one vector per item for both roles (q_i = p_i): the history is read through the output
        vectors with the gradient stopped there, so training fits only p (and b). Half the
        parameters, so half the dimensions DP-SGD's noise is spread over.
    average: the fitted parameters are an exponential moving average of the iterates with this
        decay per step (0: the last iterate). For `DPMF` the average is post-processing of the
        noisy iterates (it reads nothing but them), so it spends no budget; it averages
        DP-SGD's noise over the last ~1 / (1 - average) steps.
    lr_schedule: "constant" (``learning_rate`` throughout) or "cosine" (decayed from
        ``learning_rate`` to 0 along a half cosine over all steps of training). A schedule fixed
        in advance reads no data: it changes no privacy accounting.
    random_state: seeds initialisation, user sampling, input/target splits (and `DPMF`'s noise).
    device: "cpu" or "cuda".
    """

    fold_in = "aggregate"

    def __init__(self, factors: int = 64, learning_rate: float = 0.005, l2: float = 0.0, epochs: int = 20,
                 batch_size: int | None = 256, input_share: float = 0.5, init_std: float = 0.01,
                 max_items: int | None = None,
                 learn_bias: bool = True, tied: bool = False, average: float = 0.0, lr_schedule: str = "constant",
                 random_state: int = 0, device: str = "cpu") -> None:
        self.factors = factors
        self.learning_rate = learning_rate
        self.l2 = l2
        self.epochs = epochs
        self.batch_size = batch_size
        self.input_share = input_share
        self.init_std = init_std
        self.max_items = max_items
        self.learn_bias = learn_bias
        self.tied = tied
        self.average = average
        self.lr_schedule = lr_schedule
        self.random_state = random_state
        self.device = device

    # --- fitting ---------------------------------------------------------------------
    def _check_params(self) -> None:
        for name in ("factors", "epochs", "batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 < self.input_share < 1.0:
            raise ValueError(f"input_share must be in (0, 1) (the rest of a history is the target), "
                             f"got {self.input_share}")
        if not 0.0 <= self.average < 1.0:
            raise ValueError(f"average (the decay of the moving average of the iterates) must be in [0, 1), "
                             f"got {self.average}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {self.lr_schedule!r}")

    def _fit(self, train: TrainData) -> None:
        self._check_params()
        torch = _torch()
        history = sp.csr_matrix(train.user_items, dtype=np.float32, copy=True)
        history.data[:] = 1.0
        n_users = history.shape[0]
        self._prepare_budget(n_users, n_users)
        counts = np.asarray(_normalised_rows(history).sum(axis=0)).ravel() + self._count_noise(history.shape[1])
        self.item_popularity_ = counts.astype(np.float32)
        n_head = history.shape[1] if self.max_items is None else min(int(self.max_items), history.shape[1])
        self.head_items_ = np.sort(np.argsort(-counts, kind="stable")[:n_head]).astype(np.int64)
        history = sp.csr_matrix(history[:, self.head_items_])
        n_items = len(self.head_items_)
        gen = torch.Generator(device=self.device).manual_seed(self.random_state)
        module = _module(torch, n_items, self.factors, self.init_std, gen, self.device,
                         self._initial_bias(counts[self.head_items_]), self.learn_bias, self.tied)
        optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=self.learning_rate,
                                     weight_decay=self.l2)
        # The sampler draws user indices on the CPU whatever the device.
        loader = torch.utils.data.DataLoader(
            _rows(torch, torch.arange(n_users)), batch_size=self._batch_size(n_users),
            shuffle=True, generator=torch.Generator().manual_seed(self.random_state), collate_fn=_whole_batch)
        criterion = torch.nn.CrossEntropyLoss()  # soft targets: the user's target items, uniform
        model, optimizer, criterion, loader = self._privatise(module, optimizer, criterion, loader, n_users)
        self._run_epochs(model, optimizer, criterion, loader,
                         lambda batch: self._batch(torch, history, batch[0].numpy(), gen))
        self._store_item_side(module.input_vectors(), module.decode)
        self._after_training()

    def _run_epochs(self, model: Any, optimizer: Any, criterion: Any, loader: Any,
                    make_batch: Callable[[Any], tuple[Any, Any]]) -> None:
        """The (private) training loop of both privacy units; ``make_batch`` turns a loader batch
        into (inputs, targets). Records each epoch's mean loss and elapsed time in `history_`.
        With ``average`` > 0 the trained parameters end as the moving average of the iterates
        (computed from the iterates alone: post-processing)."""
        start = time.perf_counter()
        self.history_: list[dict[str, float]] = []
        trained = [p for p in model.parameters() if p.requires_grad]
        averaged = ParameterAverage(trained, self.average) if self.average > 0 else None
        total_steps, step = self.epochs * len(loader), 0
        for epoch in range(self.epochs):
            total, steps = 0.0, 0
            for batch in loader:
                for group in optimizer.param_groups:
                    group["lr"] = self.learning_rate * _lr_factor(self.lr_schedule, step, total_steps)
                step += 1
                inputs, targets = make_batch(batch)
                with warnings.catch_warnings():
                    # Opacus' hooks see inputs that need no gradient (the data): torch says so each step.
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss = criterion(model(inputs), targets)
                    loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if averaged is not None:
                    averaged.update()
                total += float(loss.detach())
                steps += 1
            self.history_.append({"epoch": epoch + 1, "loss": total / max(1, steps),
                                  "seconds": time.perf_counter() - start})
        if averaged is not None:
            averaged.copy_into()

    def _store_item_side(self, input_vectors: Any, decode: Any) -> None:
        """Back to the whole catalog: items outside the head have zero vectors and biases 100 below
        the lowest head bias (so below any head item's score), ordered by their popularity."""
        n_all = self.user_items_.shape[1]
        head = self.head_items_
        self.input_factors_ = np.zeros((n_all, self.factors), dtype=np.float32)
        self.item_factors_ = np.zeros((n_all, self.factors), dtype=np.float32)
        self.input_factors_[head] = input_vectors.detach().cpu().numpy()
        self.item_factors_[head] = decode.weight.detach().cpu().numpy()
        bias = decode.bias.detach().cpu().numpy().astype(np.float64)
        tail = np.setdiff1d(np.arange(n_all), head)
        full_bias = np.zeros(n_all)
        full_bias[head] = bias
        if len(tail):
            pop = self.item_popularity_[tail].astype(np.float64)
            spread = pop.max() - pop.min()
            floor = bias.min() - 100.0 if len(head) else 0.0
            full_bias[tail] = floor - 1.0 + ((pop - pop.min()) / spread if spread > 0 else 0.0)
        self.item_bias_ = full_bias.astype(np.float32)
        if not all(np.isfinite(a).all() for a in (self.input_factors_, self.item_factors_, self.item_bias_)):
            raise FloatingPointError(f"{type(self).__name__}: the item vectors are not all finite, training "
                                     "diverged. Try a smaller learning_rate (or, for dp-mf, a smaller max_grad_norm).")

    def _batch_size(self, n_users: int) -> int:
        return n_users if self.batch_size is None else min(int(self.batch_size), n_users)

    def _prepare_budget(self, n_records: int, n_users: int) -> None:
        """Set up what the private twin accounts for before it touches the data (nothing here)."""

    def _count_noise(self, n_items: int) -> np.ndarray:
        """Noise added to the popularity counts that choose the head (none here)."""
        return np.zeros(n_items)

    def _initial_bias(self, counts: np.ndarray) -> np.ndarray:
        """The items' initial biases: the log of their popularity counts (`DPMF`: the noisy, DP
        counts), floored at 1% of the largest."""
        return np.log(np.maximum(counts, 1e-2 * max(float(counts.max()), 1e-6)))

    def _privatise(self, module: Any, optimizer: Any, criterion: Any, loader: Any, n_users: int) -> tuple[Any, ...]:
        """The module, optimizer, criterion and loader training runs with (unchanged here)."""
        return module, optimizer, criterion, loader

    def _after_training(self) -> None:
        self.epsilon_, self.delta_ = math.inf, 0.0

    def _batch(self, torch: Any, history: sp.csr_matrix, users: np.ndarray, gen: Any) -> tuple[Any, Any]:
        """Dense inputs (each user's input items, unit L2 norm) and soft targets (the other items,
        summing to 1) of a batch, on the device. An empty batch (Poisson sampling) gives one all-zero
        row, whose gradient is zero: the step still runs (and, private, adds its noise)."""
        n_items = history.shape[1]
        if len(users) == 0:
            zeros = torch.zeros((1, n_items), device=self.device)
            return zeros, zeros.clone()
        rows = torch.from_numpy(history[users].toarray()).to(self.device)
        keep = torch.rand(rows.shape, generator=gen, device=self.device) < self.input_share
        inputs = rows * keep
        targets = rows - inputs
        inputs = inputs / inputs.sum(dim=1, keepdim=True).clamp(min=1.0).sqrt()
        targets = targets / targets.sum(dim=1, keepdim=True).clamp(min=1.0)
        return inputs, targets

    def privacy_spent(self) -> "PrivacySpent":
        """(epsilon, delta) the accountant spent on the fitted parameters; (inf, 0) without DP. Its
        ``unit`` says what a record is: "user", "interaction" or None (no DP)."""
        self._check_fitted("privacy_spent")
        return PrivacySpent(float(self.epsilon_), float(self.delta_), getattr(self, "privacy_unit_", None))

    # --- scoring ---------------------------------------------------------------------
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores as training computed them: the user vector is the normalised sum of the history's
        input vectors, scaled by sqrt(input_share) (training saw that share of a history on
        average), and an item in the history is scored without its own input vector (training
        never had an item in the input that predicts it)."""
        rows = _normalised_rows(self.user_items_[users]) * np.sqrt(self.input_share)
        vectors = np.asarray(rows @ float64_copy(self, "input_factors_"))
        scores = dot_scores(vectors, float64_copy(self, "item_factors_")).astype(np.float64)
        own = sp.coo_matrix(rows.multiply(self._self_terms()[None, :]))
        scores[own.row, own.col] -= own.data
        return (scores + self.item_bias_[None, :]).astype(np.float32)

    def _self_terms(self) -> np.ndarray:
        """q_i . p_i per item: what an item's own input vector adds to its score."""
        cached = self.__dict__.get("_self_terms_cache")
        if cached is None or cached[0] is not self.item_factors_:
            terms = np.einsum("ij,ij->i", self.input_factors_.astype(np.float64), self.item_factors_.astype(np.float64))
            cached = (self.item_factors_, terms)
            self.__dict__["_self_terms_cache"] = cached
        return cached[1]

    def _similar_scores(self, items: np.ndarray) -> np.ndarray:
        """Cosine between items' output vectors."""
        f = self.item_factors_
        norms = np.linalg.norm(f, axis=1)
        norms[norms == 0] = 1.0
        return dot_scores(f[items] / norms[items, None], f / norms[:, None])

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        """Nothing to recompute: user vectors are read from ``user_items_`` at scoring time."""


PRIVACY_UNITS = ("user", "interaction")
LR_SCHEDULES = ("constant", "cosine")


def _lr_factor(schedule: str, step: int, total_steps: int) -> float:
    """The learning rate of step ``step`` (0-based) of ``total_steps``, as a share of the initial one:
    1 throughout ("constant"), or a half cosine from 1 at the first step towards 0 ("cosine")."""
    if schedule == "constant" or total_steps <= 1:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / total_steps))


class DPMF(MF):
    """`MF` trained with DP-SGD (Opacus): (epsilon, delta)-DP item parameters, per user or per
    interaction (``privacy_unit``); see the module docstring for the guarantees.

    privacy_unit: "user" (default): a record is a user with all of their interactions; the
        history-based model, Poisson sampling of users, ``batch_size`` counts users.
        "interaction": a record is one (user, item) interaction; it protects the presence of any
        single interaction, NOT a user's whole history (weaker). Classical MF with per-user
        embeddings (noised like every other parameter), Poisson sampling of interactions,
        ``batch_size`` counts interactions, ``tied`` and ``input_share`` unused; users are scored
        with vectors solved from their own history against the DP item side (joint DP).
    user_l2: the interaction unit's ridge weight when solving a user's vector.

    target_epsilon: the privacy budget of the whole fit (the popularity counts and DP-SGD together).
        None trains the same model the same way without noise or clipping (exact counts, plain
        batches of ``batch_size`` records): the non-private twin, which for the interaction unit
        `MF` is not (`MF` is the user unit's history-based model).
    delta: the delta of the guarantee; None means 1 / n_users (user unit) or
        min(1 / n_interactions, 1 / n_users) (interaction unit) of the training data.
    max_grad_norm: each user's gradient is clipped to this L2 norm.
    accountant: "rdp" (Renyi DP) or "prv" (privacy random variables, tighter).
    popularity_share: the share of ``target_epsilon`` that the noisy popularity counts would cost
        alone (Gaussian mechanism; a user's unit-norm row has L2 sensitivity 1). The counts choose
        the head (``max_items``) and initialise the item biases (their logarithm). DP-SGD is then
        calibrated (``make_private_with_epsilon``) to the largest epsilon whose composition with
        the counts stays within ``target_epsilon``; the accountant holds both, so ``epsilon_`` is
        the whole fit's.
    The other arguments are `MF`'s.
    """

    def __init__(self, target_epsilon: float | None = 8.0, delta: float | None = None, max_grad_norm: float = 1.0,
                 accountant: str = "rdp", popularity_share: float = 0.1, privacy_unit: str = "user",
                 user_l2: float = 0.1, factors: int = 64,
                 learning_rate: float = 0.005, l2: float = 0.0, epochs: int = 20, batch_size: int | None = 256,
                 input_share: float = 0.5, init_std: float = 0.01, max_items: int | None = None,
                 learn_bias: bool = True, tied: bool = False, average: float = 0.0, lr_schedule: str = "constant",
                 random_state: int = 0, device: str = "cpu") -> None:
        super().__init__(factors=factors, learning_rate=learning_rate, l2=l2, epochs=epochs, batch_size=batch_size,
                         input_share=input_share, init_std=init_std, max_items=max_items, learn_bias=learn_bias,
                         tied=tied, average=average, lr_schedule=lr_schedule, random_state=random_state,
                         device=device)
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.accountant = accountant
        self.popularity_share = popularity_share
        self.privacy_unit = privacy_unit
        self.user_l2 = user_l2

    @property
    def fold_in(self) -> str:  # type: ignore[override]
        """"aggregate" (user unit: the user vector is read from the history at scoring time);
        "solve" (interaction unit: the user's vector is solved against the fixed DP item side)."""
        return "solve" if self.privacy_unit == "interaction" else "aggregate"

    def _check_params(self) -> None:
        super()._check_params()
        check_budget(self.target_epsilon, self.delta)
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.accountant not in ("rdp", "prv"):
            raise ValueError(f"accountant must be 'rdp' or 'prv', got {self.accountant!r}")
        if not 0.0 < self.popularity_share < 1.0:
            raise ValueError(f"popularity_share must be in (0, 1), got {self.popularity_share}")
        if self.privacy_unit not in PRIVACY_UNITS:
            raise ValueError(f"privacy_unit must be one of {PRIVACY_UNITS}, got {self.privacy_unit!r}")
        if not self.user_l2 >= 0:
            raise ValueError(f"user_l2 must be >= 0, got {self.user_l2}")

    # --- the interaction unit ------------------------------------------------------------
    def _fit(self, train: TrainData) -> None:
        if self.privacy_unit == "user":
            super()._fit(train)
            return
        self._check_params()
        torch = _torch()
        history = sp.csr_matrix(train.user_items, dtype=np.float32, copy=True)
        history.data[:] = 1.0
        history.eliminate_zeros()
        n_users, n_all = history.shape
        coo = history.tocoo()
        n_records = int(coo.nnz)
        if n_records == 0:
            raise ValueError("DPMF(privacy_unit='interaction') needs at least one interaction")
        self._prepare_budget(n_records, n_users)
        # One interaction adds 1 to one item's count: L2 sensitivity 1, the same Gaussian release.
        counts = np.asarray(history.sum(axis=0)).ravel().astype(np.float64) + self._count_noise(n_all)
        self.item_popularity_ = counts.astype(np.float32)
        n_head = n_all if self.max_items is None else min(int(self.max_items), n_all)
        self.head_items_ = np.sort(np.argsort(-counts, kind="stable")[:n_head]).astype(np.int64)
        position = np.full(n_all, _IGNORE, dtype=np.int64)
        position[self.head_items_] = np.arange(len(self.head_items_))
        # Every interaction is a record, the tail ones too (their target is ignored: zero loss, zero
        # gradient), so that the dataset size and the sampling rate do not depend on the head.
        records = _rows(torch, torch.from_numpy(coo.row.astype(np.int64)), torch.from_numpy(position[coo.col]))
        gen = torch.Generator(device=self.device).manual_seed(self.random_state)
        module = _interaction_module(torch, n_users, len(self.head_items_), self.factors, self.init_std, gen,
                                     self.device, self._initial_bias(counts[self.head_items_]), self.learn_bias)
        optimizer = torch.optim.Adam([p for p in module.parameters() if p.requires_grad], lr=self.learning_rate,
                                     weight_decay=self.l2)
        loader = torch.utils.data.DataLoader(records, batch_size=self._batch_size(n_records), shuffle=True,
                                             generator=torch.Generator().manual_seed(self.random_state),
                                             collate_fn=_whole_batch)
        criterion = torch.nn.CrossEntropyLoss(ignore_index=_IGNORE)
        model, optimizer, criterion, loader = self._privatise(module, optimizer, criterion, loader, n_records)
        def interactions(batch: Any) -> tuple[Any, Any]:
            users, targets = batch
            if len(users) == 0:  # an empty Poisson batch: one ignored record, the step adds its noise
                users, targets = torch.zeros(1, dtype=torch.int64), torch.full((1,), _IGNORE)
            return users.to(self.device), targets.to(self.device)

        self._run_epochs(model, optimizer, criterion, loader, interactions)
        self._store_item_side(module.decode.weight, module.decode)
        self.trained_user_factors_ = module.users.weight.detach().cpu().numpy().astype(np.float32)
        self._after_training()
        self.user_factors_ = np.zeros((0, self.factors), dtype=np.float32)
        self._fold_in_users(np.arange(n_users), None)

    def _solve_users(self, rows: sp.csr_matrix) -> np.ndarray:
        """User vectors solved against the fixed item side: the minimiser of the training loss (mean
        cross-entropy of the user's head items under the softmax over the head) plus
        ``user_l2`` * |u|^2, by L-BFGS from zero (deterministic). Uses the DP item side and the
        user's own history only."""
        torch = _torch()
        head = self.head_items_
        items = torch.from_numpy(self.item_factors_[head].astype(np.float64))
        bias = torch.from_numpy(self.item_bias_[head].astype(np.float64))
        out = np.zeros((rows.shape[0], self.factors), dtype=np.float32)
        r = sp.csr_matrix(rows[:, head], dtype=np.float64)
        r.data[:] = 1.0
        sums = np.asarray(r.sum(axis=1)).ravel()
        r = sp.csr_matrix(sp.diags(1.0 / np.maximum(sums, 1.0)) @ r)
        for lo in range(0, rows.shape[0], 4096):
            target = torch.from_numpy(r[lo:lo + 4096].toarray())
            if not target.any():
                continue
            u = torch.zeros((target.shape[0], self.factors), dtype=torch.float64, requires_grad=True)
            opt = torch.optim.LBFGS([u], lr=1.0, max_iter=50, line_search_fn="strong_wolfe")

            def closure() -> Any:
                opt.zero_grad()
                logp = torch.log_softmax(u @ items.T + bias, dim=1)
                loss = -(target * logp).sum() + self.user_l2 * (u * u).sum()
                loss.backward()
                return loss

            opt.step(closure)
            out[lo:lo + 4096] = u.detach().numpy()
        return out

    def _fold_in_users(self, users: np.ndarray, social: sp.csr_matrix | None) -> None:
        if self.privacy_unit == "user":
            return
        grown = np.zeros((self.user_items_.shape[0], self.factors), dtype=np.float32)
        grown[:len(self.user_factors_)] = self.user_factors_[:len(grown)]
        grown[users] = self._solve_users(self.user_items_[users])
        self.user_factors_ = grown

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.privacy_unit == "user":
            return super()._score(users)
        scores = dot_scores(self.user_factors_[users], float64_copy(self, "item_factors_"))
        return (scores.astype(np.float64) + self.item_bias_[None, :]).astype(np.float32)

    def _prepare_budget(self, n_records: int, n_users: int) -> None:
        """delta, the popularity release's noise multiplier and the epsilon left to DP-SGD: the
        largest whose composition with the release stays within ``target_epsilon`` (searched over
        DP-SGD's noise multiplier with the accountant, which is fast; `make_private_with_epsilon`
        then calibrates to that epsilon, and its answer can only be noisier)."""
        if self.target_epsilon is None:  # the non-private twin: nothing to account for
            self._delta_used, self.popularity_noise_ = 0.0, 0.0
            return
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier

        _opacus()
        eps = float(self.target_epsilon)
        delta = self._delta_used = float(self.delta) if self.delta is not None else 1.0 / max(n_records, n_users)
        with warnings.catch_warnings():
            _quiet_accountant()
            sigma_pop = get_noise_multiplier(target_epsilon=self.popularity_share * eps, target_delta=delta,
                                             sample_rate=1.0, steps=1, accountant=self.accountant)
        q = 1.0 / math.ceil(n_records / self._batch_size(n_records))
        steps = int(self.epochs / q)

        def spent(history: list[tuple[float, float, int]]) -> float:
            acc = create_accountant(self.accountant)
            acc.history = history
            return float(acc.get_epsilon(delta))

        with warnings.catch_warnings():
            _quiet_accountant()
            # Bisection in log space over [0.1, 1000]: 12 halvings pin sigma within 0.2%, on the
            # noisy side (each evaluation costs a fraction of a second of RDP arithmetic).
            lo, hi = math.log(0.1), math.log(1000.0)
            if spent([(sigma_pop, 1.0, 1), (math.exp(hi), q, steps)]) > eps:
                raise ValueError(f"target_epsilon={eps} cannot be met with DP-SGD's noise multiplier <= 1000; "
                                 "raise target_epsilon or popularity_share's complement, or train fewer epochs")
            for _ in range(12):
                mid = (lo + hi) / 2
                lo, hi = (lo, mid) if spent([(sigma_pop, 1.0, 1), (math.exp(mid), q, steps)]) <= eps else (mid, hi)
            self._sgd_epsilon = spent([(math.exp(hi), q, steps)])
        self.popularity_noise_ = float(sigma_pop)

    def _count_noise(self, n_items: int) -> np.ndarray:
        if self.target_epsilon is None:
            return np.zeros(n_items)
        return np.random.default_rng(self.random_state + 2).normal(0.0, self.popularity_noise_, size=n_items)

    def _privatise(self, module: Any, optimizer: Any, criterion: Any, loader: Any, n_users: int) -> tuple[Any, ...]:
        if self.target_epsilon is None:
            self.noise_multiplier_, self.sample_rate_ = 0.0, float(1.0 / len(loader))
            self.steps_ = self.epochs * len(loader)
            return module, optimizer, criterion, loader
        torch = _torch()
        opacus = _opacus()
        noise = torch.Generator(device=self.device).manual_seed(self.random_state + 1)
        with warnings.catch_warnings():
            # Opacus warns that its generator is not a cryptographically secure one (secure_mode,
            # which needs torchcsprng): the guarantee is the Gaussian mechanism's; a seeded generator
            # makes fits repeatable. A deployment that fears an attacker predicting the noise
            # stream should draw random_state from os.urandom.
            warnings.filterwarnings("ignore", message=".*[Ss]ecure RNG.*")
            # At the edges of the RDP orders the bound is looser than it could be (never looser
            # than stated): the spent epsilon is then conservative.
            _quiet_accountant()
            engine = opacus.PrivacyEngine(accountant=self.accountant)
            model, optimizer, criterion, loader = engine.make_private_with_epsilon(
                module=module, optimizer=optimizer, criterion=criterion, data_loader=loader,
                target_epsilon=self._sgd_epsilon, target_delta=self._delta_used, epochs=self.epochs,
                max_grad_norm=float(self.max_grad_norm), grad_sample_mode="ghost", noise_generator=noise)
        engine.accountant.history.insert(0, (self.popularity_noise_, 1.0, 1))  # released before training
        self._engine = engine
        self.noise_multiplier_ = float(optimizer.noise_multiplier)
        self.sample_rate_ = float(1.0 / len(loader))
        return model, optimizer, criterion, loader

    def _after_training(self) -> None:
        if self.target_epsilon is None:
            super()._after_training()  # (inf, 0): no guarantee, and no unit
            return
        self.privacy_unit_ = self.privacy_unit
        self.delta_ = self._delta_used
        with warnings.catch_warnings():
            _quiet_accountant()
            self.epsilon_ = float(self._engine.get_epsilon(self.delta_))
        self.steps_ = int(self._engine.accountant.history[-1][2])  # DP-SGD's entry (the counts' is first)
        del self._engine  # holds the data loader and hooks: not part of the fitted model


_IGNORE = -100  # CrossEntropyLoss' ignore_index: the target of an interaction with a tail item


def _rows(torch: Any, *tensors: Any) -> Any:
    """A TensorDataset that fetches a whole batch by one indexing (``__getitems__``) instead of one
    row at a time: the same batches as the TensorDataset and default collation (the sampler is the
    loader's, Poisson under Opacus), without the per-row Python loop that took a third of a fit
    with 32,768-interaction batches. A batch comes back as ``[(column, ...)]`` ([] when the sampler
    drew nothing, which Opacus' empty-batch collation handles); `_whole_batch` unwraps it."""

    class Rows(torch.utils.data.TensorDataset):  # type: ignore[misc, name-defined]
        def __getitems__(self, indices: list[int]) -> list[tuple[Any, ...]]:
            if len(indices) == 0:
                return []
            index = torch.as_tensor(indices, dtype=torch.int64)
            return [tuple(t[index] for t in self.tensors)]

    return Rows(*tensors)


def _whole_batch(batch: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """Collation of `_rows`' batches: the one (column, ...) tuple."""
    return batch[0]


def _interaction_module(torch: Any, n_users: int, n_items: int, factors: int, init_std: float, gen: Any,
                        device: str, bias: np.ndarray, learn_bias: bool) -> Any:
    """The interaction unit's trainable part: user index -> user vector (an embedding row) -> item
    scores (a linear layer over the head). An example's output depends on its own user index and
    the parameters only, so clipping its gradient bounds what one interaction changes."""

    class InteractionMF(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.users = torch.nn.Embedding(n_users, factors)
            self.decode = torch.nn.Linear(factors, n_items, bias=True)

        def forward(self, users: Any) -> Any:
            return self.decode(self.users(users))

    module = InteractionMF().to(device)
    with torch.no_grad():
        torch.nn.init.normal_(module.users.weight, std=init_std, generator=gen)
        torch.nn.init.normal_(module.decode.weight, std=init_std, generator=gen)
        module.decode.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    module.decode.bias.requires_grad_(learn_bias)
    return module


def _module(torch: Any, n_items: int, factors: int, init_std: float, gen: Any, device: str, bias: np.ndarray,
            learn_bias: bool, tied: bool) -> Any:
    """The trainable part: history (n_items) -> user vector (factors) -> item scores (n_items).
    Two linear layers (Opacus computes their per-example gradient norms without materialising the
    gradients); tied, the history is read through the decoder's weights with the gradient stopped,
    so the decoder is the only trained layer."""

    class HistoryMF(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.encode = None if tied else torch.nn.Linear(n_items, factors, bias=False)
            self.decode = torch.nn.Linear(factors, n_items, bias=True)

        def input_vectors(self) -> Any:
            """(n_items, factors): each item's input vector."""
            return self.decode.weight if tied else self.encode.weight.T

        def forward(self, x: Any) -> Any:
            user = x @ self.decode.weight.detach() if tied else self.encode(x)
            return self.decode(user)

    module = HistoryMF().to(device)
    with torch.no_grad():
        if not tied:
            torch.nn.init.normal_(module.encode.weight, std=init_std, generator=gen)
        torch.nn.init.normal_(module.decode.weight, std=init_std, generator=gen)
        module.decode.bias.copy_(torch.from_numpy(bias.astype(np.float32)))
    module.decode.bias.requires_grad_(learn_bias)
    return module

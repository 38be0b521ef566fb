"""Matrix factorisation with user-level differential privacy (DP-SGD through Opacus), and its
non-private twin trained the same way.

The model is a history-based ("asymmetric") factorisation: item ``i`` has an input vector
``q_i``, an output vector ``p_i`` and a bias ``b_i``; a user is represented by their history,

    user(u) = sum_{j in H_u} q_j / sqrt(|H_u|),     score(u, i) = user(u) . p_i + b_i,

so the model has no per-user parameters. It is trained as a multinomial model of each user's
items (full softmax over the catalog, so every unseen item is a negative and no negatives are
sampled): in each step every sampled user's history is split at random into an input part
(``input_share`` of the items) and a target part, and the loss is the cross-entropy between the
softmax of the input's scores and the target items (uniform over them). Splitting keeps an item
out of the input it is asked to predict, so the model cannot learn to echo the history.

Privacy (`DPMF`): a record is a **user**, with all of their interactions (user-level DP,
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
of the data that this accounting does not cover.

What is not covered: a user's own recommendations are computed from their own stored history
(``user_items_``, which every recommender keeps to mask seen items) and the DP item side; that
is post-processing of DP parameters with the user's own data, so the recommendations shown to
any *other* user are DP with respect to that user (joint differential privacy, the standard
guarantee for private recommenders). The stored history itself is personal data, handled as
the rest of the store is (deletion, export), not by DP.

Fold-in ("aggregate"): a user's vector is an aggregate of the fixed item input vectors of their
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
import warnings
from typing import Any

import numpy as np
import scipy.sparse as sp

from socialrec.errors import MissingDependencyError
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
    random_state: seeds initialisation, user sampling, input/target splits (and `DPMF`'s noise).
    device: "cpu" or "cuda".
    """

    fold_in = "aggregate"

    def __init__(self, factors: int = 64, learning_rate: float = 0.005, l2: float = 0.0, epochs: int = 20,
                 batch_size: int | None = 256, input_share: float = 0.5, init_std: float = 0.01,
                 max_items: int | None = None,
                 learn_bias: bool = True, tied: bool = False, random_state: int = 0, device: str = "cpu") -> None:
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

    def _fit(self, train: TrainData) -> None:
        self._check_params()
        torch = _torch()
        history = sp.csr_matrix(train.user_items, dtype=np.float32, copy=True)
        history.data[:] = 1.0
        n_users = history.shape[0]
        self._prepare_budget(n_users)
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
            torch.utils.data.TensorDataset(torch.arange(n_users)), batch_size=self._batch_size(n_users),
            shuffle=True, generator=torch.Generator().manual_seed(self.random_state))
        criterion = torch.nn.CrossEntropyLoss()  # soft targets: the user's target items, uniform
        model, optimizer, criterion, loader = self._privatise(module, optimizer, criterion, loader, n_users)
        start = time.perf_counter()
        self.history_: list[dict[str, float]] = []
        for epoch in range(self.epochs):
            total, steps = 0.0, 0
            for (users,) in loader:
                inputs, targets = self._batch(torch, history, users.numpy(), gen)
                with warnings.catch_warnings():
                    # Opacus' hooks see inputs that need no gradient (the data): torch says so each step.
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss = criterion(model(inputs), targets)
                    loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                total += float(loss.detach())
                steps += 1
            self.history_.append({"epoch": epoch + 1, "loss": total / max(1, steps),
                                  "seconds": time.perf_counter() - start})
        # Back to the whole catalog: items outside the head have zero vectors and biases 100 below
        # the lowest head bias (so below any head item's score), ordered by their popularity.
        n_all = self.user_items_.shape[1]
        head = self.head_items_
        self.input_factors_ = np.zeros((n_all, self.factors), dtype=np.float32)
        self.item_factors_ = np.zeros((n_all, self.factors), dtype=np.float32)
        self.input_factors_[head] = module.input_vectors().detach().cpu().numpy()
        self.item_factors_[head] = module.decode.weight.detach().cpu().numpy()
        bias = module.decode.bias.detach().cpu().numpy().astype(np.float64)
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
        self._after_training()

    def _batch_size(self, n_users: int) -> int:
        return n_users if self.batch_size is None else min(int(self.batch_size), n_users)

    def _prepare_budget(self, n_users: int) -> None:
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

    def privacy_spent(self) -> tuple[float, float]:
        """(epsilon, delta) the accountant spent on the fitted parameters; (inf, 0) without DP."""
        self._check_fitted("privacy_spent")
        return float(self.epsilon_), float(self.delta_)

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


class DPMF(MF):
    """`MF` trained with DP-SGD (Opacus): user-level (epsilon, delta)-DP item parameters.

    A record is a user (all of their interactions); see the module docstring for the guarantee.

    target_epsilon: the privacy budget of the whole fit (the popularity counts and DP-SGD together).
    delta: the delta of the guarantee; None means 1 / n_users of the training data.
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

    def __init__(self, target_epsilon: float = 8.0, delta: float | None = None, max_grad_norm: float = 1.0,
                 accountant: str = "rdp", popularity_share: float = 0.1, factors: int = 64,
                 learning_rate: float = 0.005, l2: float = 0.0, epochs: int = 20, batch_size: int | None = 256,
                 input_share: float = 0.5, init_std: float = 0.01, max_items: int | None = None,
                 learn_bias: bool = True, tied: bool = False, random_state: int = 0, device: str = "cpu") -> None:
        super().__init__(factors=factors, learning_rate=learning_rate, l2=l2, epochs=epochs, batch_size=batch_size,
                         input_share=input_share, init_std=init_std, max_items=max_items, learn_bias=learn_bias,
                         tied=tied, random_state=random_state, device=device)
        self.target_epsilon = target_epsilon
        self.delta = delta
        self.max_grad_norm = max_grad_norm
        self.accountant = accountant
        self.popularity_share = popularity_share

    def _check_params(self) -> None:
        super()._check_params()
        if not self.target_epsilon > 0:
            raise ValueError(f"target_epsilon must be > 0, got {self.target_epsilon}")
        if self.delta is not None and not 0.0 < self.delta < 1.0:
            raise ValueError(f"delta must be in (0, 1) or None (1 / n_users), got {self.delta}")
        if not self.max_grad_norm > 0:
            raise ValueError(f"max_grad_norm must be > 0, got {self.max_grad_norm}")
        if self.accountant not in ("rdp", "prv"):
            raise ValueError(f"accountant must be 'rdp' or 'prv', got {self.accountant!r}")
        if not 0.0 < self.popularity_share < 1.0:
            raise ValueError(f"popularity_share must be in (0, 1), got {self.popularity_share}")

    def _prepare_budget(self, n_users: int) -> None:
        """delta, the popularity release's noise multiplier and the epsilon left to DP-SGD: the
        largest whose composition with the release stays within ``target_epsilon`` (searched over
        DP-SGD's noise multiplier with the accountant, which is fast; `make_private_with_epsilon`
        then calibrates to that epsilon, and its answer can only be noisier)."""
        from opacus.accountants import create_accountant
        from opacus.accountants.utils import get_noise_multiplier

        _opacus()
        eps = float(self.target_epsilon)
        delta = self._delta_used = float(self.delta) if self.delta is not None else 1.0 / n_users
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            sigma_pop = get_noise_multiplier(target_epsilon=self.popularity_share * eps, target_delta=delta,
                                             sample_rate=1.0, steps=1, accountant=self.accountant)
        q = 1.0 / math.ceil(n_users / self._batch_size(n_users))
        steps = int(self.epochs / q)

        def spent(history: list[tuple[float, float, int]]) -> float:
            acc = create_accountant(self.accountant)
            acc.history = history
            return float(acc.get_epsilon(delta))

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
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
        return np.random.default_rng(self.random_state + 2).normal(0.0, self.popularity_noise_, size=n_items)

    def _privatise(self, module: Any, optimizer: Any, criterion: Any, loader: Any, n_users: int) -> tuple[Any, ...]:
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
            warnings.filterwarnings("ignore", message="Optimal order is the")
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
        self.delta_ = self._delta_used
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Optimal order is the")
            self.epsilon_ = float(self._engine.get_epsilon(self.delta_))
        self.steps_ = int(self._engine.accountant.history[-1][2])  # DP-SGD's entry (the counts' is first)
        del self._engine  # holds the data loader and hooks: not part of the fitted model


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

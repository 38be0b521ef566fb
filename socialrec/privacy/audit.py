"""Membership-inference audit: can an attacker tell a user's training interactions (members)
from their held-out ones (non-members) by the model's scores?

The comparison is kept fair by construction: for every user with held-out (test) items, the
non-members are all of those items and the members an equal-size uniform sample of the same
user's training items (fewer when the user has fewer). Under a random split both come from the
same distribution (the user's own interactions), so a model that generalises and does not
memorise scores them alike and every attack sits at AUC 0.5. (Under a temporal split they would
not: later items differ from earlier ones, and the attack would measure drift.)

Attacks (each gives one number per (user, item) pair, larger meaning "member"):
- ``rank``: the item's percentile among all of the user's item scores (the model's raw scores,
  nothing masked). Within one user it orders items as the loss does (for a softmax model the
  loss is a decreasing function of the score), and the percentile makes users comparable. This
  is the audit's headline attack.
- ``score``: the raw score with one global threshold (what a loss attack without per-user
  calibration sees).
- ``popularity``: the item's training popularity, whatever the model. It is the popularity
  confound's baseline: a training item counts itself once, so popular-looking items lean
  towards members even for a model that learnt nothing about the user.
- ``shadow`` (optional, one more fit per model): the attacker fits a model of the same kind on
  a shadow split of the training interactions (half of each user's training items kept as
  shadow members, the other half as shadow non-members), learns a logistic regression of
  membership on (rank percentile, raw score, log popularity, log history length) there, and
  applies it to the target model's pairs.

AUC is the Mann-Whitney statistic (ties count one half); its 95% interval comes from a
bootstrap that resamples users (a user's pairs are correlated, so pairs are not resampled
one by one).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata

from socialrec.ingest.split import Split
from socialrec.retrieve.base import BaseRecommender, TrainData


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1 = member): the
    probability that a random member outscores a random non-member, ties counting one half
    (the Mann-Whitney U statistic over n_members * n_non_members)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUC needs at least one member and one non-member")
    ranks = rankdata(scores)  # average ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def bootstrap_auc_ci(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray, *, n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval of the AUC, resampling ``groups`` (users) with replacement."""
    scores, labels, groups = np.asarray(scores, np.float64), np.asarray(labels).astype(bool), np.asarray(groups)
    uniq, inverse = np.unique(groups, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(uniq)))]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(uniq), size=len(uniq))
        idx = np.concatenate([order[starts[g]:starts[g + 1]] for g in pick])
        lab = labels[idx]
        if lab.all() or not lab.any():
            continue
        values.append(auc(scores[idx], lab))
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(values, alpha)), float(np.quantile(values, 1.0 - alpha))


@dataclass(frozen=True)
class MembershipPairs:
    """The audited (user, item) pairs: ``labels`` 1 for training items (members), 0 for held-out."""

    users: np.ndarray
    items: np.ndarray
    labels: np.ndarray


def membership_pairs(train: sp.csr_matrix, held_out: sp.csr_matrix, *, seed: int = 0,
                     max_users: int | None = None) -> MembershipPairs:
    """Balanced pairs per user: all held-out items (non-members) and as many of the user's
    training items drawn uniformly without replacement (members); a user with fewer training
    items than held-out ones gives a random equal-size subset of the held-out items instead.
    ``max_users`` samples that many users (seeded) to bound the audit's cost."""
    train, held_out = sp.csr_matrix(train), sp.csr_matrix(held_out)
    if train.multiply(held_out).nnz:
        raise ValueError("held-out interactions overlap the training ones: non-members must be unseen in training")
    rng = np.random.default_rng(seed)
    users = np.flatnonzero((np.diff(held_out.indptr) > 0) & (np.diff(train.indptr) > 0))
    if max_users is not None and len(users) > max_users:
        users = np.sort(rng.choice(users, size=max_users, replace=False))
    out_u, out_i, out_l = [], [], []
    for u in users:
        members, others = train[u].indices, held_out[u].indices
        n = min(len(members), len(others))
        m = rng.choice(members, size=n, replace=False)
        o = rng.choice(others, size=n, replace=False)
        out_u.append(np.full(2 * n, u))
        out_i.append(np.r_[m, o])
        out_l.append(np.r_[np.ones(n, np.int8), np.zeros(n, np.int8)])
    return MembershipPairs(np.concatenate(out_u).astype(np.int64), np.concatenate(out_i).astype(np.int64),
                           np.concatenate(out_l))


def pair_features(model: BaseRecommender, pairs: MembershipPairs, popularity: np.ndarray,
                  *, batch: int = 512) -> dict[str, np.ndarray]:
    """Per pair: the raw score, its percentile among the user's scores of all items, the item's
    popularity and the user's history length (what the attacks read)."""
    users = np.unique(pairs.users)
    raw = np.empty(len(pairs.users))
    pct = np.empty(len(pairs.users))
    where = {u: np.flatnonzero(pairs.users == u) for u in users}
    for start in range(0, len(users), batch):
        chunk = users[start:start + batch]
        scores = model.score(chunk).astype(np.float64)
        for row, u in enumerate(chunk):
            idx = where[u]
            s = scores[row]
            raw[idx] = s[pairs.items[idx]]
            # share of the user's items scored strictly lower, plus half of the ties
            sorted_s = np.sort(s)
            lo = np.searchsorted(sorted_s, raw[idx], side="left")
            hi = np.searchsorted(sorted_s, raw[idx], side="right")
            pct[idx] = (lo + 0.5 * (hi - lo)) / len(s)
    history = np.diff(sp.csr_matrix(model.user_items_).indptr)[pairs.users]
    return {"score": raw, "rank": pct, "popularity": popularity[pairs.items].astype(np.float64),
            "history": history.astype(np.float64)}


def _design(f: Mapping[str, np.ndarray]) -> np.ndarray:
    return np.column_stack([f["rank"], f["score"], np.log1p(f["popularity"]), np.log1p(f["history"])])


def _logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3) -> Callable[[np.ndarray], np.ndarray]:
    """A standardised L2 logistic regression (scipy L-BFGS); returns its decision function."""
    from scipy.optimize import minimize

    mu, sd = x.mean(axis=0), x.std(axis=0)
    sd[sd == 0] = 1.0
    z = np.column_stack([(x - mu) / sd, np.ones(len(x))])

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = z @ w
        p = 1.0 / (1.0 + np.exp(-m))
        value = np.mean(np.logaddexp(0.0, m) - y * m) + l2 * w[:-1] @ w[:-1]
        grad = z.T @ (p - y) / len(y) + np.r_[2 * l2 * w[:-1], 0.0]
        return float(value), grad

    w = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B").x
    return lambda x_new: np.column_stack([(x_new - mu) / sd, np.ones(len(x_new))]) @ w


def shadow_split(train: sp.csr_matrix, *, seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """The attacker's shadow data: each user's training items split in half at random into shadow
    members (the shadow model's training rows) and shadow non-members."""
    coo = sp.coo_matrix(train)
    keep = np.random.default_rng(seed).random(coo.nnz) < 0.5
    make = lambda mask: sp.csr_matrix((np.ones(int(mask.sum()), np.float32), (coo.row[mask], coo.col[mask])),  # noqa: E731
                                      shape=train.shape)
    return make(keep), make(~keep)


def audit_model(model: BaseRecommender, split: Split, *, seed: int = 0, n_boot: int = 1000,
                max_users: int | None = None, shadow: bool = False, fit: bool = True) -> dict[str, Any]:
    """Fit ``model`` on the split's training part (unless ``fit`` is False: already fitted on
    it), then run the attacks on balanced pairs of training (member) and test (non-member)
    interactions. Returns the model's entry of the audit document."""
    train = split.matrix("train")
    test = split.matrix("test")
    start = time.perf_counter()
    if fit:
        model.fit(split.train_data())
    fit_seconds = time.perf_counter() - start
    pairs = membership_pairs(train, test, seed=seed, max_users=max_users)
    popularity = np.diff(train.tocsc().indptr)
    f = pair_features(model, pairs, popularity)
    entry: dict[str, Any] = {}
    attacks = {"rank": f["rank"], "score": f["score"], "popularity": f["popularity"]}
    if shadow:
        shadow_model = model.clone()
        members, non_members = shadow_split(train, seed=seed + 1)
        shadow_model.fit(TrainData(user_items=members, dataset=split.dataset))
        s_pairs = membership_pairs(members, non_members, seed=seed + 2, max_users=max_users)
        s_f = pair_features(shadow_model, s_pairs, np.diff(members.tocsc().indptr))
        decide = _logistic(_design(s_f), s_pairs.labels.astype(np.float64))
        attacks["shadow"] = decide(_design(f))
    for name, values in attacks.items():
        value = auc(values, pairs.labels)
        lo, hi = bootstrap_auc_ci(values, pairs.labels, pairs.users, n_boot=n_boot, seed=seed)
        key = "" if name == "rank" else f"_{name}"
        entry[f"auc{key}"] = round(value, 4)
        entry[f"ci95{key}"] = [round(lo, 4), round(hi, 4)]
    entry.update({"n_pairs": int(len(pairs.labels)), "n_users": int(len(np.unique(pairs.users))),
                  "fit_seconds": round(fit_seconds, 2)})
    spent = getattr(model, "privacy_spent", None)
    if callable(spent):
        eps, delta = spent()
        entry["epsilon"] = None if not np.isfinite(eps) else round(eps, 4)
        entry["delta"] = delta
    return entry


def audit_membership(models: Mapping[str, BaseRecommender], split: Split, *, seed: int = 0, n_boot: int = 1000,
                     max_users: int | None = None, shadow: bool = False,
                     progress: Callable[[str, dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """The audit document ``{"dataset", "protocol", "seed", "attack", "models": {name: entry}}``
    for unfitted ``models`` (each fitted here on the split's training part)."""
    out: dict[str, Any] = {}
    for name, model in models.items():
        out[name] = audit_model(model, split, seed=seed, n_boot=n_boot, max_users=max_users, shadow=shadow)
        if progress is not None:
            progress(name, out[name])
    return {"dataset": split.dataset.name, "protocol": split.protocol, "seed": seed,
            "attack": "rank: per-user score percentile; members = equal-size sample of each user's training "
                      "items, non-members = the same user's test items; AUC 95% CI: bootstrap over users",
            "models": out}

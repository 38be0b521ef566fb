"""What rumour-aware ranking costs: the classifier's AUC on later posts and the policy's curve.

Protocol (`rumour_policy_curve`): the temporal split of the interactions. The classifier is
trained on the posts published by the end of the training period, its L2 weight chosen on the
latest fifth of those posts (fitted on the earlier four fifths), and its AUC measured on the
posts published after the training period. The base recommender is fitted once on the
training interactions; for each policy weight (`rank.rumour.demote`; 0 = no policy) the
validation and test users' top-10 give NDCG@10 and the share of rumours (true labels) among
the recommended items; the grid also tries keeping the base list's first items in place
(``protect``). The policy is chosen on validation (`choose_policy`): of those within
``max_loss`` relative NDCG@10 loss, the smallest weight that halves the rumour share, else the
one with the lowest share.

A base model that learns from the validation items (the hybrid trains its ranker on them) ranks
those users' held-out items better than anyone else's, so validation would judge the policy on
lists the model has fitted. With ``select_on="held-out"`` the validation users are split in two
(seeded): the base model is fitted with the first half's validation items only and the policy is
chosen on the second half, users whose validation items it never saw; the test rows come from
the base model fitted as usual (all validation items), with the policy chosen there.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dataclasses

import numpy as np
import scipy.sparse as sp

from socialrec.evaluate.classification import roc_auc
from socialrec.evaluate.protocol import evaluate
from socialrec.ingest.split import Split
from socialrec.retrieve.base import BaseRecommender

WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
PROTECT = (0, 3)  # how many of the base list's first items keep their places
L2_GRID = (1e-5, 1e-4, 1e-3)


def choose_l2(texts: Sequence[str], labels: np.ndarray, times: np.ndarray, grid: Sequence[float] = L2_GRID,
              **params: Any) -> tuple[float, dict[float, float]]:
    """The L2 weight with the best AUC on the latest fifth of the posts (fitted on the rest)."""
    from socialrec.represent.rumour import RumourClassifier, time_split_posts

    fit_idx, val_idx = time_split_posts(times, 0.8)
    aucs = {}
    for l2 in grid:
        clf = RumourClassifier(l2=l2, **params).fit([texts[i] for i in fit_idx], labels[fit_idx])
        aucs[l2] = roc_auc(clf.predict_proba([texts[i] for i in val_idx]), labels[val_idx])
    return max(grid, key=lambda v: (aucs[v], -v)), aucs


def rumour_policy_curve(split: Split, base: BaseRecommender, *, weights: Sequence[float] = WEIGHTS,
                        protect: Sequence[int] = PROTECT, k: int = 10, depth: int = 100, max_loss: float = 0.05,
                        seed: int = 0, select_on: str = "valid") -> dict[str, Any]:
    """The JSON document of `socialrec rumours` (see the module docstring). select_on: "valid"
    (all validation users, the base fitted once) or "held-out" (validation users the base model
    did not learn from)."""
    if select_on not in ("valid", "held-out"):
        raise ValueError(f"select_on must be 'valid' or 'held-out', got {select_on!r}")
    from socialrec.ingest.datasets.weibo import rumour_labels
    from socialrec.rank.rumour import RumourAware, training_cutoff
    from socialrec.represent.rumour import RumourClassifier

    ds = split.dataset
    labels = rumour_labels(ds)
    train = split.train_data()
    cutoff = training_cutoff(train)
    times = ds.item_table["timestamp"].to_numpy(np.float64)
    texts = ds.item_table["text"].fillna("").astype(str).tolist()
    earlier, later = np.flatnonzero(times <= cutoff), np.flatnonzero(times > cutoff)
    l2, l2_aucs = choose_l2([texts[i] for i in earlier], labels[earlier], times[earlier])
    clf = RumourClassifier(l2=l2).fit([texts[i] for i in earlier], labels[earlier])
    risk = clf.predict_proba(texts)
    auc = roc_auc(risk[later], labels[later]) if len(np.unique(labels[later])) == 2 else float("nan")

    fitted = _Memo.of(base.clone().fit(train))  # every weight re-ranks the same base scores
    select, select_users = fitted, None
    if select_on == "held-out":
        valid = split.matrix("valid").tocsr()
        users = np.flatnonzero(np.diff(valid.indptr) > 0)
        users = users[np.random.default_rng(seed).permutation(len(users))]
        learn, select_users = np.sort(users[:len(users) // 2]), np.sort(users[len(users) // 2:])
        keep = sp.diags(np.isin(np.arange(valid.shape[0]), learn).astype(np.float64)) @ valid
        keep.eliminate_zeros()
        select = _Memo.of(base.clone().fit(dataclasses.replace(train, valid_items=keep.tocsr())))
    policy = []
    for head, w in [(h, w) for h in protect for w in weights if w > 0 or h == protect[0]]:
        row: dict[str, Any] = {"weight": float(w), "protect": int(head)}
        for part in ("valid", "test"):
            model = RumourAware.from_fitted(select if part == "valid" else fitted, risk, weight=w, depth=depth,
                                            protect=head)
            res = evaluate(model, split, part=part, ks=(k,), seed=seed,
                           users=select_users if part == "valid" else None)
            top = res.top_items[:, :k]
            share = float(labels[top[top >= 0]].mean()) if (top >= 0).any() else float("nan")
            suffix = "" if part == "test" else "_valid"
            row[f"rumour_share@{k}{suffix}"] = round(share, 6)
            row[f"ndcg@{k}{suffix}"] = round(res.mean()[f"ndcg@{k}"], 6)
        policy.append(row)
    chosen_row = choose_policy(policy, k, max_loss)
    chosen = chosen_row["weight"]
    base_row = policy[0]
    share0, ndcg0 = base_row[f"rumour_share@{k}"], base_row[f"ndcg@{k}"]
    return {
        "dataset": ds.name, "protocol": split.protocol, "base_model": type(base).__name__,
        "auc": round(auc, 6), "n_train_posts": int(len(earlier)), "n_later_posts": int(len(later)),
        "classifier": {"l2": l2, "valid_auc_by_l2": {str(a): round(b, 6) for a, b in l2_aucs.items()}},
        "policy": policy, "chosen_weight": chosen, "chosen_protect": chosen_row["protect"],
        "test_at_chosen": {
            f"rumour_share@{k}": chosen_row[f"rumour_share@{k}"], f"ndcg@{k}": chosen_row[f"ndcg@{k}"],
            "share_ratio": round(chosen_row[f"rumour_share@{k}"] / share0, 6) if share0 else None,
            "ndcg_loss": round(1 - chosen_row[f"ndcg@{k}"] / ndcg0, 6) if ndcg0 else None,
            "ndcg_ratio": round(chosen_row[f"ndcg@{k}"] / ndcg0, 6) if ndcg0 else None,
        },
        "max_loss": max_loss, "depth": depth, "select_on": select_on,
        "n_selection_users": None if select_users is None else int(len(select_users)),
    }


class _Memo(BaseRecommender):
    """A fitted model's score rows, computed once per user (the curve asks for them per weight)."""

    def __init__(self, model: BaseRecommender | None = None) -> None:
        self.model = model

    @classmethod
    def of(cls, model: BaseRecommender) -> "_Memo":
        memo = cls(model)
        memo._set_training_matrix(model.user_items_)
        memo.rows_ = {}
        return memo

    def _fit(self, train: Any) -> None:  # pragma: no cover - built from a fitted model only
        raise NotImplementedError("_Memo wraps a fitted model: use _Memo.of(model)")

    def _score(self, users: np.ndarray) -> np.ndarray:
        missing = [int(u) for u in users if int(u) not in self.rows_]
        if missing:
            for u, row in zip(missing, np.asarray(self.model.score(np.asarray(missing)), dtype=np.float32)):  # type: ignore[union-attr]
                self.rows_[u] = row
        return np.stack([self.rows_[int(u)] for u in users])


def choose_policy(policy: Sequence[dict[str, Any]], k: int, max_loss: float) -> dict[str, Any]:
    """On validation: among the policies within ``max_loss`` relative NDCG loss, the one with the
    smallest weight that halves the rumour share (the least intervention that does; ties: the
    better NDCG); else the lowest share within that loss; the unchanged ranking (weight 0) if
    nothing qualifies."""
    base = next(r for r in policy if r["weight"] == 0.0)
    s0, n0 = base[f"rumour_share@{k}_valid"], base[f"ndcg@{k}_valid"]
    ok = [r for r in policy if r[f"ndcg@{k}_valid"] >= (1 - max_loss) * n0]
    halved = [r for r in ok if r[f"rumour_share@{k}_valid"] <= 0.5 * s0]
    if halved:
        return min(halved, key=lambda r: (r["weight"], -r[f"ndcg@{k}_valid"], r.get("protect", 0)))
    return min(ok, key=lambda r: (r[f"rumour_share@{k}_valid"], r["weight"], r.get("protect", 0)))


def plot_tradeoff(document: dict[str, Any], path: str | Path, k: int = 10) -> Path:
    """A PNG of NDCG@k against the rumour share in the top k, one point per weight, for the
    validation and test users (needs matplotlib, extra ``report``)."""
    from socialrec.evaluate.report import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.6))
    rows = document["policy"]
    for head in sorted({r.get("protect", 0) for r in rows}):
        curve = [rows[0]] + [r for r in rows[1:] if r.get("protect", 0) == head]
        for suffix, label, style in (("_valid", "validation", "o--"), ("", "test", "s-")):
            xs = [r[f"rumour_share@{k}{suffix}"] for r in curve]
            ys = [r[f"ndcg@{k}{suffix}"] for r in curve]
            ax.plot(xs, ys, style, label=f"{label}, top {head} kept" if head else label)
            if not suffix:
                for r, x, y in zip(curve, xs, ys):
                    ax.annotate(f"{r['weight']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel(f"share of rumours in the top {k}")
    ax.set_ylabel(f"NDCG@{k}")
    ax.set_title(f"Rumour demotion of {document['base_model']} on {document['dataset']}\n(chosen on validation: "
                 f"weight {document['chosen_weight']:g}, first {document.get('chosen_protect', 0)} kept in place)",
                 fontsize=9)
    ax.legend()
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out

"""A self-contained HTML report: results table and plots (matplotlib, embedded as PNG).

Plots: metric bars with 95% bootstrap intervals, per-user NDCG distributions, and the
popularity of recommended items against the catalog's. matplotlib is the ``report`` extra.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from socialrec.errors import MissingDependencyError
from socialrec.evaluate.experiment import ModelOutcome
from socialrec.ingest.split import Split


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise MissingDependencyError("matplotlib", "report", "The HTML report") from exc
    return plt


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _metric_bars(plt: Any, outcomes: Sequence[ModelOutcome], metric: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    names = [o.name for o in outcomes]
    means, lows, highs = [], [], []
    for o in outcomes:
        from socialrec.evaluate.metrics import bootstrap_ci

        m, lo, hi = bootstrap_ci(o.test.per_user[metric], n_boot=500)
        means.append(m)
        lows.append(m - lo)
        highs.append(hi - m)
    ax.bar(names, means, yerr=[lows, highs], capsize=4, color="#4C72B0")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} on test (95% bootstrap CI)")
    fig.autofmt_xdate(rotation=30)
    out = _png(fig)
    plt.close(fig)
    return out


def _per_user(plt: Any, outcomes: Sequence[ModelOutcome], metric: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.boxplot([o.test.per_user[metric] for o in outcomes], showmeans=True)
    ax.set_xticks(range(1, len(outcomes) + 1), [o.name for o in outcomes], rotation=30)
    ax.set_ylabel(metric)
    ax.set_title(f"per-user {metric}")
    out = _png(fig)
    plt.close(fig)
    return out


def _popularity(plt: Any, outcomes: Sequence[ModelOutcome], split: Split) -> str:
    pop = np.diff(split.matrix("train").tocsc().indptr).astype(float)
    fig, ax = plt.subplots(figsize=(6, 3.2))
    bins = np.logspace(0, np.log10(max(2.0, pop.max() + 1)), 30)
    ax.hist(pop + 1, bins=bins, histtype="step", density=True, label="catalog", color="black")
    for o in outcomes:
        rec = o.test.top_items[o.test.top_items >= 0]
        ax.hist(pop[rec] + 1, bins=bins, histtype="step", density=True, label=o.name)
    ax.set_xscale("log")
    ax.set_xlabel("training popularity of the item (+1)")
    ax.set_ylabel("density")
    ax.set_title("popularity of recommended items")
    ax.legend(fontsize=7)
    out = _png(fig)
    plt.close(fig)
    return out


def write_report(path: str | Path, document: dict[str, Any], outcomes: Sequence[ModelOutcome], split: Split,
                 *, examples: str = "") -> Path:
    """Write the HTML report for an `evaluate` run and return its path."""
    plt = _pyplot()
    metric_cols = sorted({k for m in document["models"].values() for k in m
                          if "@" in k and not isinstance(m[k], (dict, list)) and not k.startswith("valid")},
                         key=lambda k: (k.split("@")[0], int(k.split("@")[1])))
    rows = []
    for name, m in document["models"].items():
        cells = "".join(f"<td>{m.get(c, float('nan')):.4f}</td>" for c in metric_cols)
        rows.append(f"<tr><th>{html.escape(name)}</th>{cells}<td>{m['fit_seconds']:.1f}</td>"
                    f"<td><code>{html.escape(str(m['params']))}</code></td></tr>")
    head = "".join(f"<th>{html.escape(c)}</th>" for c in metric_cols)
    first_k = min(int(k.split("@")[1]) for k in metric_cols if k.startswith("ndcg"))
    images = [
        _metric_bars(plt, outcomes, f"ndcg@{first_k}"),
        _metric_bars(plt, outcomes, f"recall@{first_k}"),
        _per_user(plt, outcomes, f"ndcg@{first_k}"),
        _popularity(plt, outcomes, split),
    ]
    imgs = "".join(f'<img src="data:image/png;base64,{b}" alt="plot">' for b in images)
    sizes = split.sizes()
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>socialrec report: {html.escape(document['dataset'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1200px}} table{{border-collapse:collapse;font-size:13px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}} img{{max-width:48%;margin:4px}} pre{{background:#f6f6f6;padding:1em}}</style>
</head><body><h1>socialrec evaluation: {html.escape(document['dataset'])}</h1>
<p>Protocol <b>{html.escape(document['protocol'])}</b>, seed {document['seed']}; full ranking over all
{split.dataset.n_items} items with the user's earlier items masked; ties broken at random.
Split sizes: train {sizes['train']}, valid {sizes['valid']}, test {sizes['test']}.
Hyperparameters chosen on validation NDCG@10; test touched once.</p>
<table><tr><th>model</th>{head}<th>fit s</th><th>params</th></tr>{''.join(rows)}</table>
<h2>Plots</h2>{imgs}
{('<h2>Example recommendations</h2><pre>' + html.escape(examples) + '</pre>') if examples else ''}
</body></html>"""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out

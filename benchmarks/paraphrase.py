"""Generated explanations on real recommendations: how many SmolLM2 paraphrases pass the
grounding check, and how many fall back to the template sentence.

Fits a light hybrid on lastfm-recbole (random-811 training part; channels ease, itemknn, als,
social-proof, trending: the social GCN adds nothing to the explanations' vocabulary), takes the
explained top-5 of random users (seed 0) until --n recommendations, paraphrases every template
sentence with SmolLM2-135M-Instruct (greedy, batches of 32) and applies `grounding_check`.

    .venv/bin/python benchmarks/paraphrase.py [--n 1000]

Writes benchmarks/results/paraphrase-lastfm-recbole.json and a README section.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.explain.generate import SmolLMParaphraser, grounded_paraphrases, grounding_check  # noqa: E402
from socialrec.explain.pipeline import RecommendationPipeline  # noqa: E402
from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.ingest.split import make_split  # noqa: E402
from socialrec.rank.hybrid import HybridRecommender  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1000, help="recommendations to explain")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    ds = load("lastfm-recbole")
    split = make_split(ds, "random-811", seed=0)
    model = HybridRecommender(channels=("ease", "itemknn", "als", "social-proof", "trending"),
                              channel_params={"ease": {"l2": 100.0}}, progress=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(split.train_data())
    pipeline = RecommendationPipeline(model, ds)
    rng = np.random.default_rng(0)
    items = []
    for u in rng.permutation(ds.n_users):
        if len(items) >= args.n:
            break
        for rec in pipeline.recommend(ds.users.to_external(int(u)), k=5):
            items.append((rec.title, rec.reasons, rec.sentence))
    items = items[:args.n]
    templates_ok = sum(grounding_check(t, r, title, t)[0] for title, r, t in items)
    para = SmolLMParaphraser(batch_size=args.batch_size)
    t0 = time.perf_counter()
    out = grounded_paraphrases(items, para)
    secs = time.perf_counter() - t0
    passed = [o for o in out if o.generated]
    failed = [o for o in out if not o.generated]
    problems: dict[str, int] = {}
    for o in failed:
        for p in o.problems:
            key = p.split("'")[0].strip()
            problems[key] = problems.get(key, 0) + 1
    doc = {"dataset": "lastfm-recbole", "machine": describe(), "recommendations": len(items),
           "templates_passing_check": templates_ok, "paraphrases_passed": len(passed),
           "fell_back_to_template": len(failed), "final_sentences_grounded": len(items),
           "seconds": round(secs, 1), "sentences_per_second": round(len(items) / secs, 2),
           "rejection_reasons": problems,
           "examples": [{"template": t, "paraphrase": o.sentence} for (_, _, t), o in zip(items, out) if o.generated][:8],
           "rejected_examples": [{"template": t, "problems": list(o.problems)} for (_, _, t), o in zip(items, out)
                                 if not o.generated][:5]}
    path = HERE / "results" / "paraphrase-lastfm-recbole.json"
    path.write_text(json.dumps(doc, indent=2))
    lines = [f"`benchmarks/paraphrase.py --n {args.n}` on {doc['machine']}: {len(items)} explained recommendations "
             f"(LastFM, hybrid top-5 of random users). Templates passing the grounding check: {templates_ok}/{len(items)}. "
             f"SmolLM2-135M paraphrases: **{len(passed)} passed** the grounding check, **{len(failed)} fell back** to the "
             f"template, so {len(items)}/{len(items)} shown sentences are grounded. {secs:.0f} s "
             f"({doc['sentences_per_second']} sentences/s, batches of {args.batch_size}).",
             "", f"Rejections by reason: {problems}.", "", "| template | accepted paraphrase |", "|---|---|"]
    for e in doc["examples"][:5]:
        lines.append(f"| {e['template']} | {e['paraphrase']} |")
    replace_section("PARAPHRASE", "Generated explanations (SmolLM2, grounding-checked)", "\n".join(lines))
    print(json.dumps({k: v for k, v in doc.items() if k not in ("examples", "rejected_examples")}, indent=2))


if __name__ == "__main__":
    main()

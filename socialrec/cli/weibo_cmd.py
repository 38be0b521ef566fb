"""`socialrec rumours` and `socialrec trends`: rumour-aware ranking and trend monitoring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_weibo_parsers(sub: Any) -> None:
    ru = sub.add_parser("rumours", help="rumour classifier AUC on later posts and the demotion policy's cost curve")
    ru.add_argument("--dataset", default="weibo-ced", help="a dataset with labelled post texts (weibo-ced)")
    ru.add_argument("--model", default="content", help="base recommender (a name as for evaluate; default settings)")
    ru.add_argument("--output", type=Path, required=True, help="write the JSON here")
    ru.add_argument("--plot", type=Path, default=None, help="write the trade-off curve (PNG) here")
    ru.add_argument("--seed", type=int, default=0)
    ru.add_argument("--select-on", choices=("valid", "held-out"), default="valid",
                    help="choose the policy on all validation users (valid), or on half of them whose validation "
                         "items the base model did not learn from (held-out: for models that train on them, "
                         "as the hybrid's ranker does)")

    tr = sub.add_parser("trends", help="windowed engagement counts, burst alerts and trend keywords")
    tr.add_argument("--dataset", default="weibo-ced")
    tr.add_argument("--window", default="1d", help="window length: a number and s, m, h or d (default 1d)")
    tr.add_argument("--output", type=Path, required=True, help="write the JSON here")
    tr.add_argument("--top-bursts", type=int, default=20, help="how many of the largest bursts to evaluate against")
    tr.add_argument("--drop-quantile", type=float, default=0.95,
                    help="a sharp sentiment drop: at least this quantile of the drops in the timeline's first half")


def cmd_rumours(args: argparse.Namespace) -> int:
    from socialrec.evaluate.rumours import plot_tradeoff, rumour_policy_curve
    from socialrec.evaluate.suite import resolve
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    spec = resolve([args.model], quick=True)[0]
    ds = load(args.dataset, args.data)
    split = make_split(ds, "temporal", seed=args.seed)
    doc = rumour_policy_curve(split, spec.make(), seed=args.seed, select_on=args.select_on)
    doc["base_model"] = args.model
    print(f"rumour classifier on {ds.name}: AUC {doc['auc']:.4f} on {doc['n_later_posts']} later posts "
          f"(trained on {doc['n_train_posts']}, l2 {doc['classifier']['l2']:g} chosen on validation)")
    for r in doc["policy"]:
        print(f"  weight {r['weight']:<5g} rumour share@10 {r['rumour_share@10']:.3f}  ndcg@10 {r['ndcg@10']:.4f}  "
              f"(validation {r['rumour_share@10_valid']:.3f} / {r['ndcg@10_valid']:.4f})")
    t = doc["test_at_chosen"]
    print(f"chosen on validation: weight {doc['chosen_weight']:g}: test share x{t['share_ratio']}, "
          f"NDCG@10 loss {t['ndcg_loss']}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    print(f"results: {args.output}")
    if args.plot is not None:
        print(f"plot: {plot_tradeoff(doc, args.plot)}")
    return 0


def cmd_trends(args: argparse.Namespace) -> int:
    from socialrec.evaluate.trends import trends_document
    from socialrec.ingest.datasets import load

    ds = load(args.dataset, args.data)
    doc = trends_document(ds, window=args.window, top_bursts=args.top_bursts, drop_quantile=args.drop_quantile)
    ev = doc["evaluation"]
    print(f"trends on {ds.name}: {len(doc['windows'])} windows of {args.window}, {len(doc['alerts'])} alerts; "
          f"burst recall {ev['burst_recall']:.3f} over the {ev['n_bursts']} largest bursts, "
          f"{ev['false_alarms_per_day']:.4f} false alarms per day")
    for t in doc["burst_topics"][:10]:
        print(f"  {t['start']}  volume {t['volume']:>5}  {' '.join(t['keywords'])}")
    if doc.get("topic_model"):
        m, sd = doc["topic_model"], ev["sentiment_drop"]
        print(f"{m['n_topics']} topics ({m['encoder']} embeddings, {m['posts_in_topics']} of {m['n_posts']} posts); "
              f"sharp sentiment drop >= {sd['threshold']:.3f} (chosen on the first half); "
              f"{sd['alerts_first_half'] + sd['alerts_second_half']} burst+sentiment-drop alerts")
        for t in doc["topics"][:5]:
            print(f"  topic {t['topic']:>3}  {t['n_posts']:>3} posts  volume {t['volume']:>5}  "
                  f"sentiment {t['sentiment'] if t['sentiment'] is not None else float('nan'):+.3f}  "
                  f"{' '.join(t['keywords'])}")
        for a in [a for a in doc["alerts"] if a["kind"] != "burst"][:10]:
            print(f"  {a['start']}  topic {a['topic']:>3} volume {a['volume']:>4} sentiment {a['sentiment']:+.3f} "
                  f"(drop {a['drop']:.3f})  {' '.join(a['keywords'])}")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    print(f"results: {args.output}")
    return 0

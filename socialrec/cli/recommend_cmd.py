"""`socialrec recommend`: fit the hybrid pipeline on a dataset and print one user's explained top-k,
or write every user's top-k to a file (offline recommendations, optionally on Ray workers)."""

from __future__ import annotations

import argparse
import json
import sys
import time


def add_recommend_parser(sub: argparse._SubParsersAction) -> None:
    rec = sub.add_parser("recommend", help="fit the hybrid pipeline and print a user's top-k with reasons")
    rec.add_argument("--dataset", required=True, help="dataset name (see `socialrec datasets`)")
    who = rec.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", action="append", help="external user id (repeat for several users)")
    who.add_argument("--all-users", action="store_true",
                     help="every user's top-k (the model's lists, no explanations) to --output as JSON lines")
    rec.add_argument("--output", default=None, metavar="FILE",
                     help="with --all-users: one line per user, {\"user\", \"items\", \"scores\"}")
    rec.add_argument("--batch-size", type=int, default=1024, help="with --all-users: users per batch")
    from socialrec.cli.engine_args import add_engine_arguments

    add_engine_arguments(rec, "the --all-users batches")
    rec.add_argument("--k", type=int, default=10)
    rec.add_argument("--explain", action="store_true", help="print the reasons and a sentence for every item")
    rec.add_argument("--generate", action="store_true",
                     help="paraphrase the sentences with SmolLM2 (grounding-checked; falls back to the template)")
    rec.add_argument("--diversity", type=float, default=None,
                     help="re-ranking trade-off in [0, 1) (DPP over the top 100; default: the model's)")
    rec.add_argument("--channels", default=None, help="comma-separated channels (default: what the data supports)")
    values = rec.add_mutually_exclusive_group()
    values.add_argument("--value-weighted", action="store_true",
                        help="train the itemknn, als and graph channels on each user's rank of the interaction values "
                             "(play counts, ratings) instead of the binary matrix; the data needs a value column "
                             "(default: only when the values are counts, such as play counts)")
    values.add_argument("--binary", action="store_true", help="train every channel on the binary matrix")
    rec.add_argument("--json", action="store_true", help="print JSON instead of text")
    saved = rec.add_mutually_exclusive_group()
    saved.add_argument("--save", default=None, metavar="PATH",
                       help="after fitting, save the model to PATH (later calls --load it instead of refitting)")
    saved.add_argument("--load", default=None, metavar="PATH",
                       help="load a model saved with --save for this dataset instead of fitting (only your own files: "
                            "a saved model is a pickle)")


def cmd_recommend(args: argparse.Namespace) -> int:
    from socialrec.explain.pipeline import RecommendationPipeline
    from socialrec.ingest.datasets import load
    from socialrec.rank.hybrid import VALUE_WEIGHTABLE, HybridRecommender, default_channels, replica_of
    from socialrec.rank.persist import load_model, save_model
    from socialrec.retrieve.base import TrainData

    if args.all_users and not args.output:
        raise ValueError("--all-users writes to a file: add --output FILE")
    if not args.all_users and (args.output or args.engine not in (None, "local")):
        raise ValueError("--output and --engine apply to --all-users (offline recommendations for every user)")
    dataset = load(args.dataset, args.data)
    channels = tuple(c.strip() for c in args.channels.split(",")) if args.channels else None
    start = time.perf_counter()
    if args.load:
        if channels is not None or args.value_weighted or args.binary:
            raise ValueError("--channels or --value-weighted with --load: a saved model's channels were fixed when it was fitted; "
                             "drop them, or refit with them and --save PATH")
        try:
            model = load_model(args.load, dataset)
        except FileNotFoundError as exc:
            print(f"socialrec: error: {exc}", file=sys.stderr)
            return 2
        print(f"loaded the hybrid ({', '.join(model.retriever_.names)}) from {args.load} in "
              f"{time.perf_counter() - start:.1f} s")
    else:
        # Fit on every interaction the platform has: the ranker learns from a held-out tenth.
        train = TrainData(user_items=dataset.user_item_matrix(), dataset=dataset)
        names = channels if channels is not None else default_channels(train)
        weighted: tuple[str, ...] | str = "auto"  # counts (plays) weight the channels; ratings do not
        if args.value_weighted:
            weighted = tuple(n for n in names if replica_of(n)[0] in VALUE_WEIGHTABLE)
        elif args.binary:
            weighted = ()
        model = HybridRecommender(channels=names, value_weighted=weighted, progress=True)
        model.fit(train)
        print(f"fitted the hybrid ({', '.join(model.retriever_.names)}) on {dataset.name} in "
              f"{time.perf_counter() - start:.1f} s")
        if args.save:
            print(f"saved the model to {save_model(model, args.save, dataset)}")
    if args.all_users:
        return write_all_users(model, dataset, args)
    pipeline = RecommendationPipeline(model, dataset, diversity=args.diversity)
    paraphraser = None
    if args.generate:
        from socialrec.explain.generate import SmolLMParaphraser

        paraphraser = SmolLMParaphraser()
    out = {}
    for user in args.user:
        recs = pipeline.recommend(user, k=args.k, explain=args.explain or args.generate)
        sentences = [r.sentence for r in recs]
        if paraphraser is not None and recs:
            from socialrec.explain.generate import grounded_paraphrases

            checked = grounded_paraphrases([(r.title, r.reasons, r.sentence) for r in recs], paraphraser)
            sentences = [c.sentence for c in checked]
        out[user] = [{**r.to_dict(), "sentence": s} for r, s in zip(recs, sentences)]
        if not args.json:
            known = "" if user in dataset.users else " (unknown user: trending items)"
            print(f"\nuser {user}{known}:")
            for rank, (r, s) in enumerate(zip(recs, sentences), 1):
                print(f"{rank:>3}. {r.title}  [{r.score:.3f}]")
                if args.explain or args.generate:
                    print(f"     {s}")
                    print(f"     reasons: {', '.join(reason.kind for reason in r.reasons)}")
    if args.json:
        print(json.dumps(out, indent=2))
    return 0


def write_all_users(model: object, dataset: object, args: argparse.Namespace) -> int:
    """Every user's top-k (``model.recommend``) as JSON lines, scored in batches here or on Ray."""
    import numpy as np

    from socialrec.engine import make_engine
    from socialrec.retrieve.offline import recommend_all

    engine = make_engine(args.engine or "local", workers=args.workers, address=args.address)
    users = np.arange(dataset.n_users)  # type: ignore[attr-defined]
    start = time.perf_counter()
    try:
        ids, scores = recommend_all(model, users, args.k, engine=engine, batch_size=args.batch_size)  # type: ignore[arg-type]
    finally:
        engine.close()
    secs = time.perf_counter() - start
    item_ids = dataset.items.external_ids  # type: ignore[attr-defined]
    user_ids = dataset.users.external_ids  # type: ignore[attr-defined]
    with open(args.output, "w", encoding="utf-8") as fh:
        for u, row, vals in zip(users, ids, scores):
            keep = row >= 0
            fh.write(json.dumps({"user": str(user_ids[u]), "items": [str(item_ids[i]) for i in row[keep]],
                                 "scores": [float(v) for v in vals[keep]]}) + "\n")
    print(f"top-{args.k} of {len(users):,} users ({engine.name} engine) in {secs:.1f} s: {args.output}")
    return 0

"""The `socialrec` command line: thin commands that call library functions."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from socialrec.errors import SocialrecError


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 10,20, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"cut-offs must be positive integers, got {text!r}")
    return values


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def build_parser() -> argparse.ArgumentParser:
    from socialrec.ingest.split import PROTOCOLS

    parser = argparse.ArgumentParser(prog="socialrec", description="Recommendations for social platforms.")
    parser.add_argument("--data", default=None, help="data directory (default: $SOCIALREC_DATA, else ../shared/data)")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("datasets", help="list the datasets found in the data directory, with counts")

    ev = sub.add_parser("evaluate", help="tune on validation, evaluate on test with full ranking")
    ev.add_argument("--config", type=Path, default=None,
                    help="TOML file with the experiment's settings (command-line options override it)")
    ev.add_argument("--dataset", default=None, help="dataset name, or recbole:DIR / tang:DIR")
    from socialrec.evaluate.candidates import CANDIDATE_PROTOCOLS

    ev.add_argument("--protocol", default=None, choices=PROTOCOLS + CANDIDATE_PROTOCOLS,
                    help="llmrank: LLMRank's 20 fixed candidates per user on amazon-games, NDCG@10 x100")
    ev.add_argument("--models", type=_names, default=None, help="comma-separated model names")
    ev.add_argument("--k", type=_ints, default=None, help="cut-offs, e.g. 10,20")
    ev.add_argument("--seed", type=int, default=None)
    ev.add_argument("--quick", action="store_true", help="default hyperparameters only (no grid search)")
    ev.add_argument("--output", type=Path, default=None, help="write results JSON here")
    ev.add_argument("--report", type=Path, default=None, help="write an HTML report with plots here")
    ev.add_argument("--scrub-text", action="store_true",
                    help="scrub the dataset's texts (reviews, posts, profiles) of personal data after loading it")
    from socialrec.evaluate.experiment import TEST_HISTORIES

    ev.add_argument("--test-history", default=None, choices=TEST_HISTORIES,
                    help="what the chosen model reads of a test user: its training rows (default), or those plus "
                         "the user's validation items, folded in without a refit (leave-one-out as SASRec and "
                         "RecBole test: the input ends at the validation item)")
    from socialrec.cli.engine_args import add_engine_arguments

    add_engine_arguments(ev, "grid points and test chunks")

    fr = sub.add_parser("evaluate-friends", help="friend recommendation: hide 20%% of each user's edges, rank all non-friends")
    fr.add_argument("--dataset", required=True)
    fr.add_argument("--models", type=_names, default=["adamic-adar", "ppr", "pymk"])
    fr.add_argument("--k", type=_ints, default=(10, 20))
    fr.add_argument("--seed", type=int, default=0)
    fr.add_argument("--output", type=Path, default=None)

    demo = sub.add_parser("demo", help="train, evaluate and show recommendations on LastFM (or synthetic data)")
    demo.add_argument("--report", type=Path, default=Path("out/demo-report.html"))
    demo.add_argument("--output", type=Path, default=Path("out/demo-results.json"))
    demo.add_argument("--users", type=int, default=3, help="how many users' recommendations to print")
    demo.add_argument("--no-serve", action="store_true", help="do not start the service afterwards (for scripts)")
    demo.add_argument("--port", type=int, default=8000, help="port of the demo service on 127.0.0.1")
    demo.add_argument("--state-dir", type=Path, default=Path("out/demo-state"), help="state of the demo service")
    from socialrec.cli import serve_cmd

    serve_cmd.add_parsers(sub)
    from socialrec.cli.encode_cmd import add_encode_parser

    add_encode_parser(sub)
    from socialrec.cli.recommend_cmd import add_recommend_parser

    add_recommend_parser(sub)
    from socialrec.cli.scrub_cmd import add_scrub_parser

    add_scrub_parser(sub)
    from socialrec.cli.audit_cmd import add_audit_parser

    add_audit_parser(sub)
    from socialrec.cli.chat_cmd import add_chat_parsers

    add_chat_parsers(sub)
    from socialrec.cli import sentiment_cmd

    sentiment_cmd.add_parsers(sub)
    from socialrec.cli.weibo_cmd import add_weibo_parsers

    add_weibo_parsers(sub)
    from socialrec.cli import transfer_cmd

    transfer_cmd.add_parsers(sub)
    return parser


def _social_kind(summary: dict) -> str:
    if not summary["social_edges"]:
        return "no social graph"
    return "directed social graph" if summary["social_directed"] else "symmetric social graph"


def cmd_datasets(args: argparse.Namespace) -> int:
    from socialrec.ingest.datasets import available_names, data_dir, load

    root = data_dir(args.data)
    print(f"data directory: {root}{'' if root.exists() else ' (missing: only synthetic is available)'}")
    print(f"{'name':<16}{'users':>9}{'items':>9}{'interactions':>14}{'social':>9}  notes")
    for name in available_names():
        try:
            start = time.perf_counter()
            s = load(name, args.data).summary()
            secs = time.perf_counter() - start
            print(f"{name:<16}{s['users']:>9,}{s['items']:>9,}{s['interactions']:>14,}{s['social_edges']:>9,}  "
                  f"{_social_kind(s)}; loaded in {secs:.1f}s")
        except SocialrecError as exc:
            print(f"{name:<16}  unavailable: {exc}")
    return 0


def _item_categories(dataset: object) -> object:
    import numpy as np
    import pandas as pd

    table = dataset.item_table  # type: ignore[attr-defined]
    if "category" not in table.columns:
        return None
    codes, _ = pd.factorize(table["category"], use_na_sentinel=True)
    return np.asarray(codes, dtype=np.int64)


def run_evaluation(dataset_name: str, protocol: str, model_names: list[str], ks: tuple[int, ...], seed: int,
                   *, data: str | None, quick: bool, output: Path | None, report: Path | None,
                   dataset: object | None = None, examples_users: int = 0, scrub_text: bool = False,
                   engine: object | None = None, test_history: str = "train") -> dict:
    """Load, split, tune, test; print a table; write JSON and the report. Returns the document.
    ``test_history``: "train" or "train+valid" (`socialrec.evaluate.experiment.tune_and_test`).
    ``scrub_text``: scrub the dataset's texts of personal data right after loading it.
    ``engine``: a `socialrec.engine` engine for the grid points and test chunks (default: this process)."""
    from socialrec.evaluate.experiment import results_document, tune_and_test
    from socialrec.evaluate.suite import resolve
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    specs = resolve(model_names, quick=quick)
    start = time.perf_counter()
    ds = dataset if dataset is not None else load(dataset_name, data)
    if scrub_text:
        from socialrec.privacy.scrub import scrub_dataset

        ds = scrub_dataset(ds)  # type: ignore[arg-type]
        print(ds.notes[-1])  # type: ignore[attr-defined]
    print(f"loaded {ds.name}: {ds.n_users:,} users, {ds.n_items:,} items, {len(ds.interactions):,} interactions "  # type: ignore[attr-defined]
          f"({time.perf_counter() - start:.1f}s)")
    split = make_split(ds, protocol, seed=seed)  # type: ignore[arg-type]
    print(f"split {protocol}: {split.sizes()}")
    categories = _item_categories(ds)
    shared = None
    if engine is not None and engine.name != "local":  # type: ignore[attr-defined]
        from socialrec.evaluate.engine_tasks import share_split

        t0 = time.perf_counter()
        workers = engine.workers  # type: ignore[attr-defined]  # starts the engine
        t1 = time.perf_counter()
        shared = share_split(engine, split)  # type: ignore[arg-type]
        print(f"engine {engine.name}: {workers} workers, started in {t1 - t0:.1f}s; "  # type: ignore[attr-defined]
              f"split shared in {time.perf_counter() - t1:.1f}s")
    outcomes = []
    for spec in specs:
        t0 = time.perf_counter()
        outcome = tune_and_test(spec, split, ks=ks, seed=seed, item_categories=categories,  # type: ignore[arg-type]
                                engine=engine, shared=shared, test_history=test_history)  # type: ignore[arg-type]
        outcomes.append(outcome)
        m = outcome.test.mean()
        print(f"  {spec.name:<13} ndcg@{ks[0]}={m[f'ndcg@{ks[0]}']:.4f} recall@{ks[0]}={m[f'recall@{ks[0]}']:.4f} "
              f"params={outcome.params} ({time.perf_counter() - t0:.1f}s with tuning)")
    document = results_document(ds.name, protocol, seed, outcomes, test_history)  # type: ignore[attr-defined]
    print()
    print(format_table(document, ks))
    examples = ""
    if examples_users:
        examples = format_examples(ds, split, outcomes, examples_users)
        print()
        print(examples)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(document, indent=2))
        print(f"results: {output}")
    if report is not None:
        from socialrec.evaluate.report import write_report

        path = write_report(report, document, outcomes, split, examples=examples)
        print(f"report: {path.resolve()}")
    return document


def format_table(document: dict, ks: tuple[int, ...]) -> str:
    cols = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "precision", "mrr")]
    lines = [f"{'model':<14}" + "".join(f"{c:>13}" for c in cols) + f"{'fit s':>8}"]
    for name, m in document["models"].items():
        lines.append(f"{name:<14}" + "".join(f"{m[c]:>13.4f}" for c in cols) + f"{m['fit_seconds']:>8.1f}")
    curves = {name: m["cold_user_curve"] for name, m in document["models"].items() if m.get("cold_user_curve")}
    if curves:  # cold-user protocol: the cold users' first n items revealed online
        k = ks[0]
        ns = sorted({int(n) for c in curves.values() for n in c})
        lines += ["", f"cold users, ndcg@{k} after their first n items (online, no refit):",
                  f"{'model':<14}" + "".join(f"{'n=' + str(n):>10}" for n in ns)]
        for name, c in curves.items():
            lines.append(f"{name:<14}" + "".join(f"{c[str(n)][f'ndcg@{k}']:>10.4f}" if str(n) in c else f"{'-':>10}"
                                                 for n in ns))
    return "\n".join(lines)


def format_examples(dataset: object, split: object, outcomes: list, n_users: int) -> str:
    """Top-10 of the best model for a few test users, with names, next to what they really played."""
    best = max(outcomes, key=lambda o: o.test.mean().get("ndcg@10", 0.0))
    model_users = best.test.users[:n_users]
    truth = split.matrix("test")  # type: ignore[attr-defined]
    train = split.matrix("train")  # type: ignore[attr-defined]
    lines = [f"top-10 of the best model ({best.name}) for {len(model_users)} users:"]
    for row, u in enumerate(model_users):
        ext = dataset.users.to_external(int(u))  # type: ignore[attr-defined]
        known = dataset.item_titles(train[u].indices[:5])  # type: ignore[attr-defined]
        held = set(truth[u].indices.tolist())
        recs = best.test.top_items[row][:10]
        names = dataset.item_titles(recs[recs >= 0])  # type: ignore[attr-defined]
        marks = ["*" if i in held else " " for i in recs[recs >= 0]]
        lines.append(f"user {ext} (liked e.g. {', '.join(known)}):")
        lines.extend(f"   {r + 1:>2}.{m} {n}" for r, (n, m) in enumerate(zip(names, marks)))
    lines.append("(* = in the user's held-out test items)")
    return "\n".join(lines)


def experiment_config(args: argparse.Namespace) -> "ExperimentConfig":  # noqa: F821
    """The config file's settings, overridden by whatever was given on the command line."""
    from socialrec.config import from_dict
    from socialrec.evaluate.config import ExperimentConfig, load_experiment

    base = dataclasses.asdict(load_experiment(args.config)) if args.config else {}
    given = {"dataset": args.dataset, "protocol": args.protocol, "models": args.models, "ks": args.k,
             "seed": args.seed, "output": str(args.output) if args.output else None,
             "report": str(args.report) if args.report else None, "data": args.data,
             "engine": args.engine, "workers": args.workers, "address": args.address,
             "test_history": args.test_history}
    base.update({k: v for k, v in given.items() if v is not None})
    if args.quick:
        base["quick"] = True
    if args.scrub_text:
        base["scrub_text"] = True
    if "dataset" not in base:
        raise ValueError("no dataset: pass --dataset NAME or a --config file that sets dataset")
    return from_dict(ExperimentConfig, base, source=str(args.config or "command line"))


def cmd_evaluate(args: argparse.Namespace) -> int:
    cfg = experiment_config(args)
    from socialrec.evaluate.candidates import CANDIDATE_PROTOCOLS

    if cfg.protocol in CANDIDATE_PROTOCOLS:
        if cfg.scrub_text:
            raise ValueError(f"--scrub-text is not supported with the {cfg.protocol} protocol (its candidates "
                             "come with their own texts)")
        if cfg.engine != "local":
            raise ValueError(f"--engine {cfg.engine} is not supported with the {cfg.protocol} protocol (20 fixed "
                             "candidates per user: one process is enough); drop --engine")
        from socialrec.cli.llmrank_cmd import run_candidate_evaluation

        run_candidate_evaluation(cfg.dataset, cfg.protocol, list(cfg.models), cfg.seed, data=cfg.data,
                                 quick=cfg.quick, output=Path(cfg.output) if cfg.output else None)
        return 0
    from socialrec.engine import make_engine

    engine = make_engine(cfg.engine, workers=cfg.workers, address=cfg.address)
    try:
        start = time.perf_counter()
        run_evaluation(cfg.dataset, cfg.protocol, list(cfg.models), cfg.ks, cfg.seed, data=cfg.data,
                       quick=cfg.quick, output=Path(cfg.output) if cfg.output else None,
                       report=Path(cfg.report) if cfg.report else None, scrub_text=cfg.scrub_text, engine=engine,
                       test_history=cfg.test_history)
        print(f"wall time ({cfg.engine} engine): {time.perf_counter() - start:.1f}s")
    finally:
        engine.close()
    return 0


def cmd_evaluate_friends(args: argparse.Namespace) -> int:
    from socialrec.evaluate.friends import friend_models, run_friend_evaluation
    from socialrec.ingest.datasets import load

    known = friend_models()
    unknown = [m for m in args.models if m not in known]
    if unknown:
        raise ValueError(f"unknown friend model(s) {unknown}; known: {', '.join(known)}")
    ds = load(args.dataset, args.data)
    doc = run_friend_evaluation(ds, args.models, args.k, args.seed)
    k0 = args.k[0]
    print(f"friend recommendation on {ds.name} ({doc['protocol']}, seed {args.seed})")
    for name, m in doc["models"].items():
        print(f"  {name:<18} recall@{k0}={m[f'recall@{k0}']:.4f} ndcg@{k0}={m[f'ndcg@{k0}']:.4f} fit {m['fit_seconds']:.1f}s")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=2, default=str))
        print(f"results: {args.output}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from socialrec.evaluate.suite import BASELINES
    from socialrec.ingest.datasets import data_dir, load

    root = data_dir(args.data)
    if (root / "lastfm-hetrec2011").exists():
        print(f"demo: LastFM (HetRec 2011) from {root}")
        dataset = load("lastfm", args.data)
    else:
        print(f"demo: no data directory at {root} (set $SOCIALREC_DATA); "
              "running on the built-in synthetic social platform instead")
        dataset = load("synthetic")
    run_evaluation(dataset.name, "random-811", list(BASELINES), (10, 20), 0, data=args.data, quick=True,
                   output=args.output, report=args.report, dataset=dataset, examples_users=args.users)
    if not args.no_serve:
        from socialrec.cli.serve_cmd import demo_serve

        served = "lastfm" if (root / "lastfm-hetrec2011").exists() else "synthetic"
        demo_serve(served, args.data, args.state_dir, "127.0.0.1", args.port,
                   example_user=str(dataset.users.external_ids[0]))
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from socialrec.cli.recommend_cmd import cmd_recommend as run

    return run(args)


def cmd_scrub(args: argparse.Namespace) -> int:
    from socialrec.cli.scrub_cmd import cmd_scrub as run

    return run(args)


def cmd_encode(args: argparse.Namespace) -> int:
    from socialrec.cli.encode_cmd import cmd_encode as run

    return run(args)


def cmd_audit_membership(args: argparse.Namespace) -> int:
    from socialrec.cli.audit_cmd import cmd_audit_membership as run

    return run(args)


def cmd_chat(args: argparse.Namespace) -> int:
    from socialrec.cli.chat_cmd import cmd_chat as run

    return run(args)


def cmd_rumours(args: argparse.Namespace) -> int:
    from socialrec.cli.weibo_cmd import cmd_rumours as run

    return run(args)


def cmd_generate(args: argparse.Namespace) -> int:
    from socialrec.cli.chat_cmd import cmd_generate as run

    return run(args)


def cmd_trends(args: argparse.Namespace) -> int:
    from socialrec.cli.weibo_cmd import cmd_trends as run

    return run(args)


COMMANDS = {"datasets": cmd_datasets, "evaluate": cmd_evaluate, "evaluate-friends": cmd_evaluate_friends,
            "demo": cmd_demo, "encode": cmd_encode, "recommend": cmd_recommend, "scrub": cmd_scrub,
            "audit-membership": cmd_audit_membership, "rumours": cmd_rumours, "trends": cmd_trends,
            "chat": cmd_chat, "generate": cmd_generate}


def main(argv: Sequence[str] | None = None) -> int:
    from socialrec.cli.sentiment_cmd import COMMANDS as SENTIMENT_COMMANDS
    from socialrec.cli.serve_cmd import COMMANDS as SERVE_COMMANDS
    from socialrec.cli.transfer_cmd import COMMANDS as TRANSFER_COMMANDS

    args = build_parser().parse_args(argv)
    try:
        return {**COMMANDS, **SERVE_COMMANDS, **SENTIMENT_COMMANDS, **TRANSFER_COMMANDS}[args.command](args)
    except SocialrecError as exc:
        print(f"socialrec: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"socialrec: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())

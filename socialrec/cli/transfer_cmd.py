"""`socialrec evaluate-transfer` and `socialrec evaluate-scenarios`: one backbone, many domains."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _shots(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated shares like 0,0.01,0.05,0.2,1.0, got {text!r}") from None
    if not values or min(values) < 0 or max(values) > 1:
        raise argparse.ArgumentTypeError(f"shots are shares of the target's users in [0, 1], got {text!r}")
    return values


def _max_users(text: str) -> int | None:
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"--max-users must be >= 0 (0: every user), got {text!r}")
    return n or None


def add_parsers(sub: Any) -> None:
    tr = sub.add_parser("evaluate-transfer", help="zero-, few-shot and full-data transfer of a shared backbone to a "
                                                   "new domain, against scratch, EASE, ALS and popularity")
    tr.add_argument("--sources", type=_names, required=True, help="comma-separated domains the backbone learns from")
    tr.add_argument("--target", required=True, help="the new domain")
    tr.add_argument("--shots", type=_shots, default=[0.0, 0.01, 0.05, 0.2, 1.0],
                    help="shares of the target's users to learn from (0: zero-shot)")
    sc = sub.add_parser("evaluate-scenarios", help="one backbone with an adapter per domain against a separately "
                                                   "trained model per domain; parameters and memory")
    sc.add_argument("--datasets", type=_names, required=True, help="comma-separated domains")
    for p in (tr, sc):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--output", type=Path, default=None, help="write the JSON document here")
        p.add_argument("--max-users", type=_max_users, default=5000,
                       help="a seeded sample of at most this many users per domain (0: every user; default 5000, "
                            "what 2 CPU cores afford)")
        p.add_argument("--progress", action="store_true", help="print each training epoch")


def _write(doc: dict, output: Path | None) -> None:
    text = json.dumps(doc, indent=2, default=str)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text)
        print(f"results: {output}")


def cmd_evaluate_transfer(args: argparse.Namespace) -> int:
    from socialrec.evaluate.transfer import run_transfer

    doc = run_transfer(args.sources, args.target, args.shots, seed=args.seed, data=args.data,
                       max_users=args.max_users, progress=args.progress)
    print(f"transfer to {doc['target']} from {', '.join(doc['sources'])} ({doc['protocol']}, test NDCG@10):")
    print(f"{'shot':>6}" + "".join(f"{m:>12}" for m in ("adapter", "scratch", "ease", "als", "popularity")))
    for shot, row in doc["shots"].items():
        cells = [row[m]["ndcg@10"] for m in ("adapter", "scratch", "ease", "als", "popularity")]
        print(f"{shot:>6}" + "".join(f"{'-':>12}" if v is None else f"{v:>12.4f}" for v in cells))
    _write(doc, args.output)
    return 0


def cmd_evaluate_scenarios(args: argparse.Namespace) -> int:
    from socialrec.evaluate.transfer import run_scenarios

    doc = run_scenarios(args.datasets, seed=args.seed, data=args.data, max_users=args.max_users,
                        progress=args.progress)
    print(f"{'domain':<16}{'adapter':>10}{'separate':>10}{'ratio':>8}{'adapter share':>15}")
    for name, row in doc["domains"].items():
        print(f"{name:<16}{row['adapter']['ndcg@10']:>10.4f}{row['separate']['ndcg@10']:>10.4f}"
              f"{row['adapter_vs_separate'] or float('nan'):>8.3f}{row['adapter_param_share']:>15.4f}")
    m = doc["memory_mb"]
    print(f"memory: shared {m['shared']:.1f} MB, separate {m['separate']:.1f} MB ({doc['memory_ratio']:.2f}x)")
    _write(doc, args.output)
    return 0


COMMANDS = {"evaluate-transfer": cmd_evaluate_transfer, "evaluate-scenarios": cmd_evaluate_scenarios}

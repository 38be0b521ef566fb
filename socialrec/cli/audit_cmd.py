"""`socialrec audit-membership`: the membership-inference audit of models on a dataset."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_audit_parser(sub: Any) -> None:
    from socialrec.ingest.split import PROTOCOLS

    au = sub.add_parser("audit-membership",
                        help="membership-inference audit: can training interactions be told from held-out ones?")
    au.add_argument("--dataset", required=True, help="dataset name, or recbole:DIR / tang:DIR")
    au.add_argument("--models", required=True, type=lambda t: [v.strip() for v in t.split(",") if v.strip()],
                    help="comma-separated model names (as for evaluate), fitted with their default settings")
    au.add_argument("--output", type=Path, required=True, help="write the audit JSON here")
    au.add_argument("--protocol", default="random-811", choices=PROTOCOLS,
                    help="split whose test part gives the non-members (random: same distribution as members)")
    au.add_argument("--seed", type=int, default=0)
    au.add_argument("--max-users", type=int, default=None, help="audit a seeded sample of this many users")
    au.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples of users for the 95%% CI")
    au.add_argument("--shadow", action="store_true", help="also run the shadow-model attack (one more fit per model)")


def cmd_audit_membership(args: argparse.Namespace) -> int:
    from socialrec.evaluate.suite import resolve
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split
    from socialrec.privacy.audit import audit_membership

    specs = resolve(args.models, quick=True)
    ds = load(args.dataset, args.data)
    split = make_split(ds, args.protocol, seed=args.seed)
    print(f"audit on {ds.name} ({args.protocol}, seed {args.seed}): {split.sizes()}")

    def show(name: str, entry: dict) -> None:
        lo, hi = entry["ci95"]
        print(f"  {name:<12} AUC {entry['auc']:.4f} [{lo:.4f}, {hi:.4f}]  popularity-only {entry['auc_popularity']:.4f}"
              + (f"  shadow {entry['auc_shadow']:.4f}" if "auc_shadow" in entry else ""))

    doc = audit_membership({s.name: s.make() for s in specs}, split, seed=args.seed, n_boot=args.bootstrap,
                           max_users=args.max_users, shadow=args.shadow, progress=show)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2))
    print(f"results: {args.output}")
    return 0

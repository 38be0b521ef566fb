"""Should channels train on interaction values (play counts) by default? Decided on validation.

For each value-weightable channel kind (`ChannelKind.value_weightable`), the same model is fitted
on the training part of a split, once on the binary matrix and once on the per-user rank weights
of the interaction values (`represent.profiles.value_rank_weights`), and scored on the
validation part (NDCG@10, full ranking, training items masked). The hybrid's default
(`value_weighted="auto"`) follows what this measures: weight when the data's values are counts
(no rating scale). Test rows are never read.

Writes benchmarks/results/value-weights-DATASET.json and a README section.

    nice .venv/bin/python benchmarks/value_weights.py [--dataset lastfm] [--models itemknn,als,lightgcn,social]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="lastfm")
    parser.add_argument("--protocol", default="random-811")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--models", default="itemknn,als,lightgcn,social")
    args = parser.parse_args()

    from socialrec.evaluate.protocol import evaluate
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split
    from socialrec.represent.profiles import value_rank_weights
    from socialrec.retrieve.channel_table import CHANNELS

    ds = load(args.dataset)
    split = make_split(ds, args.protocol, seed=args.seed)
    train = split.train_data()
    weighted = dataclasses.replace(train, user_items=value_rank_weights(ds, train.user_items))
    rows = {}
    for name in args.models.split(","):
        row = {}
        for label, data in (("binary", train), ("value_rank", weighted)):
            start = time.perf_counter()
            model = CHANNELS[name].factory().fit(data)
            # Masking and features use the binary history either way.
            model.user_items_ = train.user_items
            row[label] = round(float(evaluate(model, split, part="valid", ks=(10,)).mean()["ndcg@10"]), 4)
            row[f"{label}_seconds"] = round(time.perf_counter() - start, 1)
        row["gain"] = round(row["value_rank"] / row["binary"] - 1, 4)
        rows[name] = row
        print(name, row, flush=True)
    doc = {"dataset": ds.name, "protocol": args.protocol, "seed": args.seed, "part": "valid", "machine": describe(),
           "models": rows}
    out = HERE / "results" / f"value-weights-{args.dataset}.json"
    out.write_text(json.dumps(doc, indent=2))
    lines = [f"Validation NDCG@10 ({ds.name}, {args.protocol}, seed {args.seed}; test rows not read). "
             f"Machine: {doc['machine']}.", "", "| channel | binary | value-rank weights | gain |", "|---|---|---|---|"]
    lines += [f"| {n} | {r['binary']:.4f} | {r['value_rank']:.4f} | {100 * r['gain']:+.1f}% |" for n, r in rows.items()]
    replace_section(f"VALUE-WEIGHTS-{args.dataset.upper()}", f"Channels on interaction values: {ds.name} (validation)",
                    "\n".join(lines))


if __name__ == "__main__":
    main()

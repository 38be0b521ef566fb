"""Membership-inference audit on LastFM: dp-mf beside its non-private twin and library models.

Runs what `socialrec audit-membership` runs (socialrec.privacy.audit) and adds the README table:

    PYTHONPATH=. .venv/bin/python -m socialrec audit-membership --dataset lastfm \\
        --models dp-mf,mf,pop,itemknn,als,ease --shadow --output benchmarks/results/membership-audit.json
    PYTHONPATH=. .venv/bin/python benchmarks/membership_audit.py   # the table from that JSON

(or ``benchmarks/membership_audit.py --run`` to do both; ``--run --only dp-mf-interaction`` reruns
one model into a scratch file and replaces its row, keeping the other rows). Members: an equal-size uniform sample of
each user's training interactions; non-members: the same user's test interactions (random 8:1:1
split, so both are the user's own interactions, drawn alike). Models are fitted with their
default settings (dp-mf: user level, epsilon 8, delta 1/n_users; dp-mf-interaction: interaction
level, epsilon 8, delta 1/n_interactions).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "membership-audit.json"
MODELS = ("dp-mf,dp-mf-interaction,mf-interaction,dp-als,als-twin,dp-ease,dp-ease-interaction,ease-twin,mf,pop,"
          "itemknn,als,ease")


def _auc(auc: float) -> str:
    """An AUC with three decimals, or four where three would round it onto the 0.55 target."""
    return f"{auc:.4f}" if f"{auc:.3f}" == "0.550" else f"{auc:.3f}"


def _interval_note(row: dict) -> str:
    """What the 95% interval says about the 0.55 target where it straddles it."""
    lo, hi = row["ci95"]
    if row["auc"] <= 0.55 < hi:
        return "; its interval reaches above 0.55, so the point estimate meets the target, not the interval"
    if lo <= 0.55 < row["auc"]:
        return "; its interval reaches below 0.55: the point estimate misses the target by less than the interval"
    return ""


def table(doc: dict) -> str:
    lines = [f"Machine: {doc.get('machine', describe())}. Dataset {doc['dataset']} ({doc['protocol']}, seed "
             f"{doc['seed']}); `socialrec audit-membership --dataset lastfm --models {MODELS} --shadow`; raw numbers "
             "in `results/membership-audit.json`.", "",
             "Members: an equal-size uniform sample of each user's training interactions; non-members: the same "
             "user's held-out test interactions. AUC 0.5 = the attacker cannot tell them apart. *Rank* (the "
             "headline): the item's percentile among the user's scores of all items (a loss attack, calibrated per "
             "user). *Score*: the raw score, one global threshold. *Popularity only*: the item's training "
             "popularity, whatever the model (a training item counts itself: the confound every model starts "
             "from). *Shadow*: a logistic regression on (rank, score, log popularity, log history length) learnt "
             "on a shadow model of the same kind fitted on half of each user's training items. 95% intervals: "
             "bootstrap over users.", "",
             "| model | AUC rank [95% CI] | AUC score | AUC shadow | AUC popularity only | epsilon | fit s |",
             "|---|---|---|---|---|---|---|"]
    for name, e in doc["models"].items():
        lo, hi = e["ci95"]
        eps = "-" if "epsilon" not in e else ("inf" if e["epsilon"] is None else f"{e['epsilon']:.2f}")
        shadow = f"{e['auc_shadow']:.4f} [{e['ci95_shadow'][0]:.4f}, {e['ci95_shadow'][1]:.4f}]" if "auc_shadow" in e else "-"
        lines.append(f"| {name} | {e['auc']:.4f} [{lo:.4f}, {hi:.4f}] | {e['auc_score']:.4f} | {shadow} | "
                     f"{e['auc_popularity']:.4f} | {eps} | {e['fit_seconds']:.1f} |")
    for name, e in doc.get("superseded", {}).items():
        lines.append(f"| {name} (superseded) | {e['auc']:.4f} [{e['ci95'][0]:.4f}, {e['ci95'][1]:.4f}] | "
                     f"{e['auc_score']:.4f} | "
                     + (f"{e['auc_shadow']:.4f} [{e['ci95_shadow'][0]:.4f}, {e['ci95_shadow'][1]:.4f}]"
                        if "auc_shadow" in e else "-")
                     + f" | {e['auc_popularity']:.4f} | - | {e['fit_seconds']:.1f} |")
    dp = doc["models"].get("dp-mf")
    if dp is not None:
        met = "meets" if dp["auc"] <= 0.55 and dp.get("auc_shadow", 0.0) <= 0.55 else "does not meet"
        lines += ["", f"Target: membership AUC <= 0.55 for dp-mf. It {met} it (rank attack {dp['auc']:.3f}, shadow "
                  f"{dp.get('auc_shadow', float('nan')):.3f}, against {dp['auc_popularity']:.3f} for popularity alone). "
                  "mf and dp-mf score an item in the history without its own input vector, so what an attack finds "
                  "there is what training memorised. The formal bound that epsilon 8 gives an attacker is vacuous "
                  "(e^8); these AUCs are what these attacks achieve, a lower bound on leakage, not a proof of its "
                  "absence. The non-private item-item models (EASE, ItemKNN) and ALS give their training "
                  "interactions away far more: a user's own items shaped the similarities that score them."]
    dpa = doc["models"].get("dp-als")
    if dpa is not None:
        met = "meets" if dpa["auc"] <= 0.55 and dpa.get("auc_shadow", 0.0) <= 0.55 else "does not meet"
        twin = doc["models"].get("als-twin")
        lines += ["", f"dp-als (private ALS, user level, epsilon {dpa['epsilon']:.2f}, delta {dpa['delta']:.2g}) {met} "
                  f"the same target (rank attack {dpa['auc']:.3f} [95% CI {dpa['ci95'][0]:.3f}, {dpa['ci95'][1]:.3f}]"
                  + (f", shadow {dpa['auc_shadow']:.3f} [{dpa['ci95_shadow'][0]:.3f}, {dpa['ci95_shadow'][1]:.3f}]"
                     if "auc_shadow" in dpa else ", shadow attack not run")
                  + (f"; its non-private twin als-twin, the same model without noise: rank {twin['auc']:.3f}"
                     + (f", shadow {twin['auc_shadow']:.3f}" if "auc_shadow" in twin else "") if twin else "")
                  + "). Each user is scored with a vector solved from their own training history against the "
                  "private item vectors, so these attacks see the user's own data at work, which the guarantee "
                  "(joint DP: what *other* users are shown) does not cover."]
    dpi = doc["models"].get("dp-mf-interaction")
    if dpi is not None:
        met = "meets" if dpi["auc"] <= 0.55 and dpi.get("auc_shadow", 0.0) <= 0.55 else "does not meet"
        lines += ["", f"dp-mf-interaction (a record is one interaction, the weaker unit; epsilon {dpi['epsilon']:.2f}, "
                  f"delta {dpi['delta']:.2g}) {met} the same target (rank attack {dpi['auc']:.3f} [95% CI {dpi['ci95'][0]:.3f}, {dpi['ci95'][1]:.3f}], "
                  + (f"shadow {dpi['auc_shadow']:.3f}" if "auc_shadow" in dpi else
                     "shadow attack not run for this row: with its current settings (PRV accountant, averaged "
                     "iterates) it was rerun alone with `membership_audit.py --run --only dp-mf-interaction "
                     "--no-shadow`, as one fit took 20 minutes on the shared machine")
                  + _interval_note(dpi)
                  + (f"; its non-private twin mf-interaction, the same model and training without noise or "
                     f"clipping: rank {tw['auc']:.3f}" + (f", shadow {tw['auc_shadow']:.3f}" if "auc_shadow" in tw else "")
                     if (tw := doc["models"].get("mf-interaction")) else "")
                  + "). Each user is scored with a vector solved from their "
                  "own training history, so this attack sees the user's own data at work, which the guarantee (joint "
                  "DP: what *other* users are shown) does not cover."]
    twin = doc["models"].get("ease-twin")
    for name, unit in (("dp-ease", "user"), ("dp-ease-interaction", "interaction, the weaker unit")):
        e = doc["models"].get(name)
        if e is None:
            continue
        met = "meets" if e["auc"] <= 0.55 and e.get("auc_shadow", 0.0) <= 0.55 else "does not meet"
        lines += ["", f"{name} (private EASE, {unit}; epsilon {e['epsilon']:.2f}, delta {e['delta']:.2g}) {met} the "
                  f"same target (rank attack {_auc(e['auc'])} [95% CI {e['ci95'][0]:.3f}, {e['ci95'][1]:.3f}]"
                  + (f", shadow {e['auc_shadow']:.3f} [{e['ci95_shadow'][0]:.3f}, {e['ci95_shadow'][1]:.3f}]"
                     if "auc_shadow" in e else ", shadow attack not run")
                  + _interval_note(e)
                  + (f"; its non-private twin ease-twin, the same model without noise: rank {twin['auc']:.3f}"
                     + (f", shadow {twin['auc_shadow']:.3f}" if "auc_shadow" in twin else "") if twin else "")
                  + "). A user's scores are their own row times the private item-item weights: the attack sees "
                  "those weights, in which one record is hidden by the noise, applied to the user's own history."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", action="store_true", help="run the audit first (minutes: EASE and shadow fits)")
    parser.add_argument("--only", default=None,
                        help="with --run: audit only these models (comma-separated) and replace their rows")
    parser.add_argument("--no-shadow", action="store_true",
                        help="with --only: skip the shadow attack (its row then shows none)")
    args = parser.parse_args()
    if args.run and args.only:
        scratch = RESULT.with_name("membership-audit-partial.json")
        subprocess.run([sys.executable, "-m", "socialrec", "audit-membership", "--dataset", "lastfm", "--models",
                        args.only, *([] if args.no_shadow else ["--shadow"]), "--output", str(scratch)],
                       check=True)
        doc = json.loads(RESULT.read_text())
        part = json.loads(scratch.read_text())
        for key in ("dataset", "protocol", "seed", "attack"):
            if part.get(key) != doc.get(key):
                raise SystemExit(f"{scratch} differs from {RESULT} in {key!r}: rerun every model with --run alone")
        doc["models"].update(part["models"])  # superseded rows stay, labelled
        doc["machine"] = describe()
        RESULT.write_text(json.dumps(doc, indent=2))
        scratch.unlink()
    elif args.run:
        subprocess.run([sys.executable, "-m", "socialrec", "audit-membership", "--dataset", "lastfm", "--models", MODELS,
                        "--shadow", "--output", str(RESULT)], check=True)
    doc = json.loads(RESULT.read_text())
    if "machine" not in doc:
        doc["machine"] = describe()
        RESULT.write_text(json.dumps(doc, indent=2))
    replace_section("MEMBERSHIP-AUDIT", "Membership-inference audit (LastFM)", table(doc))
    print(table(doc))


if __name__ == "__main__":
    main()

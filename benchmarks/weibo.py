"""Weibo (weibo-ced): Chinese posts end to end, rumour-aware ranking and trend alerts.

Every number comes from the product's own commands, run here as subprocesses:

    socialrec evaluate --dataset weibo-ced --protocol temporal  --models pop,itemknn,als,content,social,hybrid
    socialrec evaluate --dataset weibo-ced --protocol cold-item --models pop,itemknn,als,content,social --k 10,20
    socialrec evaluate --dataset weibo-ced --protocol temporal  --models content,sentiment-content,hybrid-no-sentiment,hybrid,sentiment-hybrid
    socialrec rumours  --dataset weibo-ced --output ... --plot ...
    socialrec rumours  --dataset weibo-ced --model hybrid [--select-on held-out] --output ... --plot ...
    socialrec trends   --dataset weibo-ced --window 1d --output ...

    PYTHONPATH=. .venv/bin/python benchmarks/weibo.py [--parts temporal,cold-item,rumours,trends]
    PYTHONPATH=. .venv/bin/python benchmarks/weibo.py --readme-only   # the README section from the JSON

Writes benchmarks/results/weibo-temporal.json, weibo-cold-item.json, weibo-sentiment.json,
weibo-rumours.json, weibo-rumours-hybrid.json, weibo-rumours-hybrid-heldout.json (+ .png),
weibo-trends.json and the README section.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
TEMPORAL_MODELS = "pop,itemknn,als,content,social,hybrid"
COLD_MODELS = "pop,itemknn,als,content,social"
SENTIMENT_MODELS = "content,sentiment-content,hybrid-no-sentiment,hybrid,sentiment-hybrid"
NON_TEXT = ("pop", "itemknn", "als", "social")
# The targets (quoted in the README section).
TARGETS = {"hybrid_over_best_single_ndcg@10": 1.05, "content_over_best_non_text_ndcg@20": 2.0,
           "rumour_auc": 0.85, "rumour_share_ratio": 0.5, "rumour_ndcg_loss": 0.05, "burst_recall": 0.8}

COMMANDS = {
    "temporal": ["evaluate", "--dataset", "weibo-ced", "--protocol", "temporal", "--models", TEMPORAL_MODELS,
                 "--output", str(RESULTS / "weibo-temporal.json")],
    "sentiment": ["evaluate", "--dataset", "weibo-ced", "--protocol", "temporal", "--models", SENTIMENT_MODELS,
                  "--output", str(RESULTS / "weibo-sentiment.json")],
    "cold-item": ["evaluate", "--dataset", "weibo-ced", "--protocol", "cold-item", "--models", COLD_MODELS,
                  "--k", "10,20", "--output", str(RESULTS / "weibo-cold-item.json")],
    "rumours": ["rumours", "--dataset", "weibo-ced", "--output", str(RESULTS / "weibo-rumours.json"),
                "--plot", str(RESULTS / "weibo-rumours.png")],
    "rumours-hybrid": ["rumours", "--dataset", "weibo-ced", "--model", "hybrid",
                       "--output", str(RESULTS / "weibo-rumours-hybrid.json"),
                       "--plot", str(RESULTS / "weibo-rumours-hybrid.png")],
    # The hybrid learns its ranker from the validation items: its policy chosen on validation
    # users it did not learn from (`socialrec rumours --select-on held-out`).
    "rumours-hybrid-heldout": ["rumours", "--dataset", "weibo-ced", "--model", "hybrid", "--select-on", "held-out",
                               "--output", str(RESULTS / "weibo-rumours-hybrid-heldout.json"),
                               "--plot", str(RESULTS / "weibo-rumours-hybrid-heldout.png")],
    "trends": ["trends", "--dataset", "weibo-ced", "--window", "1d", "--output", str(RESULTS / "weibo-trends.json")],
}


def run(part: str, data: str | None) -> float:
    cmd = [sys.executable, "-m", "socialrec"] + (["--data", data] if data else []) + COMMANDS[part]
    print("$", " ".join(cmd[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return time.perf_counter() - start


def _load(name: str) -> dict[str, Any] | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def _rumour_lines(name: str) -> list[str]:
    rum = _load(name)
    if not rum:
        return []
    t = rum["test_at_chosen"]
    held = rum.get("select_on") == "held-out"
    flag = " --select-on held-out" if held else ""
    lines = [f"Rumours (`socialrec rumours --dataset weibo-ced --model {rum['base_model']}{flag}`; results/{name}, "
             f"curve in results/{name.replace('.json', '.png')}). Classifier: logistic regression on jieba words "
             f"and character n-grams of the post, trained on the {rum['n_train_posts']} posts of the training period; "
             f"AUC on the {rum['n_later_posts']} later posts: {rum['auc']:.3f} (target 0.85: "
             f"{'met' if rum['auc'] >= 0.85 else 'not met'}). "
             f"Policy on the base model {rum['base_model']} (chosen on validation: weight "
             f"{rum['chosen_weight']:g}, first {rum.get('chosen_protect', 0)} item(s) of the list kept in place):", "",
             "| weight | head kept | rumour share@10 | NDCG@10 | valid share@10 | valid NDCG@10 |",
             "|---|---|---|---|---|---|"]
    if held:
        lines[0] = lines[0].replace("Policy on the base model", (
            "The policy is chosen on validation users the base model did not learn from: the hybrid trains its "
            "ranker on the validation items, so for the selection it is fitted once more with half of the "
            f"validation users' items and the 'valid' columns are the other {rum['n_selection_users']} users; the "
            "test columns are the hybrid fitted as usual. Policy on the base model"))
    for r in rum["policy"]:
        lines.append(f"| {r['weight']:g} | {r.get('protect', 0)} | {r['rumour_share@10']:.3f} | {r['ndcg@10']:.4f} | "
                     f"{r['rumour_share@10_valid']:.3f} | {r['ndcg@10_valid']:.4f} |")
    if t["share_ratio"] is not None and t["ndcg_loss"] is not None:
        ok = t["share_ratio"] <= 0.5 and t["ndcg_loss"] <= 0.05
        lines += ["", f"At the chosen policy the test share of rumours is {t['share_ratio']:.2f}x the unchanged "
                      f"ranking's and NDCG@10 {t['ndcg_ratio']:.3f}x its value (target: at most half the share "
                      f"for at most a 5% NDCG@10 loss: {'met' if ok else 'not met'})."]
        if not ok and t["ndcg_loss"] > 0.05:
            lines[-1] += " The policy was within the loss on the validation users, whose period differs."
        elif not ok:
            lines[-1] += (" The loss is within the budget, but the share is not halved: the policy halved it on "
                          "the validation users, whose period differs.")
    lines.append("")
    return lines


def _sentiment_lines() -> list[str]:
    doc = _load("weibo-sentiment.json")
    if not doc:
        return []
    m = doc["models"]
    lines = ["I(u,c) on Weibo (`socialrec evaluate --dataset weibo-ced --protocol temporal --models "
             f"{SENTIMENT_MODELS}`; results/weibo-sentiment.json). E(u): the recency-weighted mean sentiment "
             "(half-life 180 days) of the user's own training comments, scored by the trained Chinese model "
             "(`socialrec sentiment-train`; SnowNLP where none is saved); s(c): the mean sentiment of the post's "
             "own words and its training comments (a new post has only its words). As a hybrid feature "
             "(`hybrid`: item sentiment and E(u) x s(c) among the ranker's features; `hybrid-no-sentiment` "
             "without them) and as the additive I(u,c) = f(u,c) + w E(u) s(c) on a standardised base "
             "(`sentiment-content`, `sentiment-hybrid` on the hybrid without the features), w chosen on "
             "validation NDCG@10 inside fit from 0 and the grid `0.1, 0.25, 0.5, 1, 2, 4, 8` (a first run "
             "with the grid ending at 2 chose 2 for content, its edge, so the grid was extended; content "
             "then chose the new edge, 8, where the mood match outweighs most of the content score: "
             "larger weights were not tried; the hybrid chose the smallest non-zero weight both times). "
             "The machine was shared with other heavy jobs (load average near 30): fit times are "
             "not comparable between rows.", "",
             "| model | NDCG@10 | 95% CI | Recall@10 | NDCG@20 | valid NDCG@10 | weight chosen |",
             "|---|---|---|---|---|---|---|"]
    for name, v in m.items():
        w = (v.get("fit_choices") or {}).get("weight")
        ci = v["ci95"]["ndcg@10"]
        lines.append(f"| {name} | {v['ndcg@10']:.4f} | {ci[0]:.4f}-{ci[1]:.4f} | {v['recall@10']:.4f} | "
                     f"{v['ndcg@20']:.4f} | {v['valid_ndcg@10']:.4f} | {'-' if w is None else f'{float(w):g}'} |")
    notes = []
    for label, a, b in (("the feature in the hybrid", "hybrid", "hybrid-no-sentiment"),
                        ("the additive term on content", "sentiment-content", "content"),
                        ("the additive term on the hybrid", "sentiment-hybrid", "hybrid-no-sentiment")):
        if a in m and b in m and m[b]["ndcg@10"] > 0:
            lo_a, hi_a = m[a]["ci95"]["ndcg@10"]
            lo_b, hi_b = m[b]["ci95"]["ndcg@10"]
            overlap = lo_a <= hi_b and lo_b <= hi_a
            notes.append(f"{label}: {a} / {b} NDCG@10 {m[a]['ndcg@10'] / m[b]['ndcg@10']:.2f}x"
                         f"{' (the 95% intervals overlap)' if overlap else ''}")
    if notes:
        notes[0] = notes[0][0].upper() + notes[0][1:]
        lines += ["", "Does it help engagement ranking? " + "; ".join(notes) + ". The hybrid's validation "
                  "NDCG@10 is its ranker's training data (it learns from the validation items), so it overstates "
                  "the hybrid and the weight chosen there for `sentiment-hybrid` is chosen on fitted lists."]
    lines.append("")
    return lines


def _topic_lines(tr: dict[str, Any]) -> list[str]:
    info = tr.get("topic_model")
    if not info:
        return []
    sd = tr["evaluation"]["sentiment_drop"]
    ch = sd["chosen_on"]
    lines = [f"Topics (same command and file): the {info['n_posts']} posts clustered by their "
             f"{info['encoder']} embeddings (average linkage, cosine distance cut at {info['distance_threshold']:g}, "
             f"topics of at least {info['min_posts']} posts): {info['n_topics']} topics holding "
             f"{info['posts_in_topics']} posts and {info['engagements_in_topics']} engagements, named by c-TF-IDF "
             "over jieba words. The cut is not tuned (no labelled topics to tune it on). Per topic and day: "
             "engagements and the mean sentiment of the comments written that day and of posts published that "
             "day (trained Chinese model). Topic alert: the topic's own volume bursts (the chosen rule, at least "
             f"{sd['topic_detector']['min_count']} engagements) and its mean sentiment that day (at least "
             f"{sd['min_texts']} texts) falls below the mean of all its earlier texts by at least "
             f"{sd['threshold']:.3f}: the {ch['quantile']:g} quantile of the {ch['judged_topic_windows']} "
             f"drops judged in the first half of the timeline ({ch['windows']} days). "
             f"{sd['topic_bursts']} topic bursts; {sd['alerts_first_half']} burst + sentiment-drop alerts in "
             f"the first half, {sd['alerts_second_half']} in the second (whose engagements are fewer; "
             f"{sd['alerts_per_day_second_half']:g} per day). No labelled sentiment crises exist to measure "
             "their precision.", "",
             "| topic | keywords | posts | engagements | mean sentiment |", "|---|---|---|---|---|"]
    for t in tr["topics"][:8]:
        sent = "-" if t["sentiment"] is None else f"{t['sentiment']:+.3f}"
        lines.append(f"| {t['topic']} | {' '.join(t['keywords'])} | {t['n_posts']} | {t['volume']} | {sent} |")
    alerts = [a for a in tr["alerts"] if a["kind"] != "burst"]
    if alerts:
        lines += ["", "Burst + sentiment-drop alerts: " + "; ".join(
            f"{a['start'][:10]} topic {a['topic']} ({' '.join(a['keywords'][:3])}): {a['volume']} engagements, "
            f"sentiment {a['sentiment']:+.3f}, drop {a['drop']:.3f}" for a in alerts[:8])
            + ("." if len(alerts) <= 8 else f"; and {len(alerts) - 8} more.")]
    lines.append("")
    return lines


def readme() -> None:
    meta = _load("weibo-meta.json") or {}
    lines = [f"Machine: {meta.get('machine', describe())} (shared with other jobs: timings are noisy; "
             "targets and wall times in results/weibo-meta.json). "
             "Every number below is printed by the command named beside it. Hyperparameters, the "
             "rumour policy's weight and the alert rule are chosen on validation data, but the rumour "
             "policy's selection rule is not untouched by test results: after a first run missed the "
             "target on the hybrid's test users, a 'keep the head' option and a 'best NDCG@10 among the "
             "weights that halve the share' rule were tried (commit `bf5f28b`); that rule cost content much "
             "of its test NDCG@10, and the first rule (the smallest weight that halves the share on "
             "validation) was restored (commit `a726d94`), keeping the head option in the curve. Read the "
             "policy rows with that in mind. The hybrid's miss led to one more change, of what the policy is "
             "chosen on rather than how (`--select-on held-out`, results/weibo-rumours-hybrid-heldout.json): "
             "the hybrid learns its ranker from the validation items, so its validation lists are fitted "
             "lists; the held-out run chooses on validation users it did not learn from, with the same rule "
             "and grid, and no test number entered that choice.", ""]
    temporal = _load("weibo-temporal.json")
    if temporal:
        m = temporal["models"]
        singles = {k: v for k, v in m.items() if k != "hybrid"}
        best = max(singles, key=lambda k: singles[k]["ndcg@10"])
        lines += ["Temporal split (`socialrec evaluate --dataset weibo-ced --protocol temporal --models "
                  f"{TEMPORAL_MODELS}`; results/weibo-temporal.json). The latest posts are new items: "
                  "almost every held-out engagement is with a post that has no training interaction.", "",
                  "| model | NDCG@10 | Recall@10 | NDCG@20 | fit s |", "|---|---|---|---|---|"]
        for name, v in m.items():
            lines.append(f"| {name} | {v['ndcg@10']:.4f} | {v['recall@10']:.4f} | {v['ndcg@20']:.4f} | "
                         f"{v['fit_seconds']:.1f} |")
        if "hybrid" in m and singles[best]["ndcg@10"] > 0:
            ratio = m["hybrid"]["ndcg@10"] / singles[best]["ndcg@10"]
            lines += ["", f"Hybrid / best single model ({best}) NDCG@10: {ratio:.2f}x (target 1.05x: "
                          f"{'met' if ratio >= 1.05 else 'not met'})."]
        lines.append("")
    cold = _load("weibo-cold-item.json")
    if cold:
        m = cold["models"]
        lines += ["Cold items (`socialrec evaluate --dataset weibo-ced --protocol cold-item --models "
                  f"{COLD_MODELS} --k 10,20`; results/weibo-cold-item.json): a fifth of the posts have "
                  "no training interaction at all.", "",
                  "| model | NDCG@20 | Recall@20 | NDCG@10 |", "|---|---|---|---|"]
        for name, v in m.items():
            lines.append(f"| {name} | {v['ndcg@20']:.4f} | {v['recall@20']:.4f} | {v['ndcg@10']:.4f} |")
        others = {k: v["ndcg@20"] for k, v in m.items() if k in NON_TEXT}
        if "content" in m and others:
            best = max(others, key=others.get)  # type: ignore[arg-type]
            floor = max(others[best], 1e-12)
            lines += ["", f"Content on Chinese text (multilingual USE) / best non-text model ({best}) "
                          f"NDCG@20: {m['content']['ndcg@20'] / floor:.1f}x (target 2x: "
                          f"{'met' if m['content']['ndcg@20'] >= 2 * others[best] else 'not met'})."]
        lines.append("")
    lines += _sentiment_lines()
    for name in ("weibo-rumours.json", "weibo-rumours-hybrid.json", "weibo-rumours-hybrid-heldout.json"):
        lines += _rumour_lines(name)
    tr = _load("weibo-trends.json")
    if tr:
        e = tr["evaluation"]
        w = e["whole_timeline"]
        d = e["detector"]
        lines += ["Trends (`socialrec trends --dataset weibo-ced --window 1d`; results/weibo-trends.json): "
                  f"daily engagement counts; the alert rule (z {d['z']:g}, ratio {d['ratio']:g}, "
                  f"{d['history']} windows of history) was chosen on the first half of the timeline.", "",
                  "| part | burst recall (20 largest) | false alarms / day | alerts | alert precision |",
                  "|---|---|---|---|---|",
                  f"| second half (held out) | {e['burst_recall']:.2f} | {e['false_alarms_per_day']:.4f} | "
                  f"{e['n_alerts']} | {e['alert_precision']:.3f} |",
                  f"| whole timeline | {w['burst_recall']:.2f} | {w['false_alarms_per_day']:.4f} | {w['n_alerts']} | "
                  f"{w['alert_precision']:.3f} |", ""]
        lines += [f"Target: an alert within one window of the peak for at least 0.8 of the 20 largest bursts: "
                  f"{'met' if e['burst_recall'] >= 0.8 and w['burst_recall'] >= 0.8 else 'not met'}.", ""]
        big = sorted(tr.get("burst_topics", tr["topics"]), key=lambda t: -t["volume"])[:5]
        lines += ["Keywords (jieba) of the five largest alerts: "
                  + "; ".join(f"{t['start'][:10]}: {' '.join(t['keywords'])}" for t in big) + ".", ""]
        lines += _topic_lines(tr)
    replace_section("WEIBO", "Weibo: Chinese posts, rumour-aware ranking, trend alerts (benchmarks/weibo.py)",
                    "\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parts", default=",".join(COMMANDS), help=f"comma-separated, from {list(COMMANDS)}")
    ap.add_argument("--data", default=None, help="data directory (default: $SOCIALREC_DATA, else ../shared/data)")
    ap.add_argument("--readme-only", action="store_true")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    meta = _load("weibo-meta.json") or {}
    meta["targets"] = TARGETS
    if not args.readme_only:
        meta["machine"] = describe()
        for part in [p.strip() for p in args.parts.split(",") if p.strip()]:
            if part not in COMMANDS:
                raise SystemExit(f"unknown part {part!r}; use {list(COMMANDS)}")
            seconds = round(run(part, args.data), 1)
            meta = {**(_load("weibo-meta.json") or {}), "machine": meta["machine"], "targets": TARGETS}  # parts may run side by side
            meta.setdefault("wall_seconds", {})[part] = seconds
            (RESULTS / "weibo-meta.json").write_text(json.dumps(meta, indent=2))
    meta = {**(_load("weibo-meta.json") or {}), "targets": TARGETS}
    (RESULTS / "weibo-meta.json").write_text(json.dumps(meta, indent=2))
    if args.readme_only:  # the curves again from their JSON (after a change to the plot)
        from socialrec.evaluate.rumours import plot_tradeoff

        for name in ("weibo-rumours", "weibo-rumours-hybrid"):
            doc = _load(f"{name}.json")
            if doc:
                plot_tradeoff(doc, RESULTS / f"{name}.png")
    readme()


if __name__ == "__main__":
    main()

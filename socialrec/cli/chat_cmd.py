"""`socialrec chat` (an interactive conversation in the terminal) and `socialrec generate` (an
item's blurb or post). Both call the library: `socialrec.explain.dialogue` over a served model
(`socialrec.serve.chat.build_chat`), `socialrec.explain.writer`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def _llm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", choices=("none", "smollm", "openai"), default="none",
                   help="what writes the text: templates only, the offline SmolLM2-135M-Instruct, or an "
                        "OpenAI-compatible endpoint (every generation is grounding-checked; the template answers when "
                        "it fails)")
    p.add_argument("--llm-url", default=None, help="base URL of the OpenAI-compatible endpoint (--llm openai)")
    p.add_argument("--llm-model", default=None, help="model name sent to the endpoint (--llm openai)")
    p.add_argument("--llm-key-env", default="SOCIALREC_LLM_KEY",
                   help="environment variable holding the endpoint's API key (default: SOCIALREC_LLM_KEY)")


def add_chat_parsers(sub: argparse._SubParsersAction) -> None:
    chat = sub.add_parser("chat", help="talk to the recommender: refine recommendations turn by turn in the terminal")
    chat.add_argument("--dataset", required=True, help="dataset name (see `socialrec datasets`)")
    chat.add_argument("--user", default=None, help="external user id (default: a stranger, from the words alone)")
    chat.add_argument("--k", type=int, default=10)
    chat.add_argument("--model", default="hybrid", help="the recommender behind the candidates (a model of "
                      "`socialrec evaluate`'s table; default: the hybrid, which fits in minutes on LastFM)")
    chat.add_argument("--load", default=None, metavar="PATH",
                      help="a hybrid saved with `socialrec recommend --save PATH` instead of fitting")
    chat.add_argument("--encoder", default="minilm", help="text encoder matching words to tags ('none': exact names only)")
    chat.add_argument("--message", action="append", default=None,
                      help="say this instead of reading the terminal (repeat for several turns)")
    chat.add_argument("--json", action="store_true", help="print each turn as JSON")
    _llm_arguments(chat)

    gen = sub.add_parser("generate", help="write an item's blurb or shareable post from its facts (grounding-checked)")
    gen.add_argument("--dataset", required=True, help="dataset name (see `socialrec datasets`)")
    gen.add_argument("--item", required=True, action="append", help="external item id (repeat for several)")
    gen.add_argument("--kind", choices=("blurb", "post"), default="blurb")
    gen.add_argument("--json", action="store_true", help="print JSON")
    _llm_arguments(gen)


def _generator(args: argparse.Namespace) -> Any:
    from socialrec.explain.llm import make_generator

    return make_generator(args.llm, url=args.llm_url, model=args.llm_model, key_env=args.llm_key_env)


def _served(args: argparse.Namespace) -> Any:
    from socialrec.ingest.datasets import load
    from socialrec.retrieve.base import TrainData
    from socialrec.serve.engine import ModelConfig, ServedModel

    dataset = load(args.dataset, args.data)
    start = time.perf_counter()
    if args.load:
        from socialrec.rank.persist import load_model

        model = load_model(args.load, dataset)
    else:
        model, _ = ModelConfig(args.model).make()
        model.fit(TrainData(user_items=dataset.user_item_matrix(), dataset=dataset))
    print(f"{'loaded' if args.load else 'fitted'} {type(model).__name__} on {dataset.name} in "
          f"{time.perf_counter() - start:.1f} s", file=sys.stderr)
    return ServedModel(model, dataset, None, version="cli")


def cmd_chat(args: argparse.Namespace) -> int:
    from socialrec.serve.chat import build_chat

    if args.k < 1:
        raise ValueError(f"--k must be >= 1, got {args.k}")
    served = _served(args)
    if args.user is not None and args.user not in served.dataset.users:
        print(f"user {args.user!r} is not in {args.dataset}: chatting from the words alone", file=sys.stderr)
    dialogue, _ = build_chat(served, generator=_generator(args),
                             encoder=None if args.encoder == "none" else args.encoder)
    state = dialogue.new_session()
    known = args.user if args.user in served.dataset.users else None
    messages = iter(args.message) if args.message is not None else None
    if messages is None:
        print("Say what you would like (an empty line or Ctrl-D ends).", file=sys.stderr)
    while True:
        if messages is not None:
            message = next(messages, None)
        else:
            try:
                message = input("you> ")
            except EOFError:
                message = None
        if message is None or (messages is None and not message.strip()):
            return 0
        try:
            turn = dialogue.respond(state, known, message, args.k)
        except ValueError as exc:
            print(f"socialrec: {exc}", file=sys.stderr)
            continue
        if args.json:
            print(json.dumps({"reply": turn.reply, "items": [it.to_dict() for it in turn.items],
                              "question": turn.question, "generated": turn.generated,
                              "understood": turn.understood}, ensure_ascii=False))
            continue
        print(f"bot> {turn.reply}")
        for n, it in enumerate(turn.items, 1):
            print(f"  {n:2d}. {it.title}  ({it.reason})")
        if turn.question:
            print(f"bot> {turn.question}")


def cmd_generate(args: argparse.Namespace) -> int:
    from socialrec.explain.catalog import CatalogIndex
    from socialrec.explain.writer import ItemWriter
    from socialrec.ingest.datasets import load

    dataset = load(args.dataset, args.data)
    writer = ItemWriter(CatalogIndex(dataset), _generator(args), model_version="cli")
    missing = [i for i in args.item if i not in dataset.items]
    if missing:
        print(f"socialrec: error: unknown item(s) {missing} in {dataset.name} (ids as in the dataset's item table)",
              file=sys.stderr)
        return 2
    for item in args.item:
        text = writer.write(item, args.kind)
        print(json.dumps(text.to_dict(), ensure_ascii=False) if args.json else text.text)
    return 0

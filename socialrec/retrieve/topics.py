"""Topics of a post timeline and the alerts raised on them.

`PostTopics` clusters the posts by their text embeddings (agglomerative clustering, average
linkage on cosine distance, cut at ``distance_threshold``: posts closer than that on average
share a topic; clusters of fewer than ``min_posts`` posts are left out as "no topic", -1) and
names each topic by its c-TF-IDF keywords (`ctfidf_keywords`: the words of its posts, jieba for
Chinese via `represent.lexical.tokens`, weighted by how much more frequent they are in the topic
than across all topics; Grootendorst's class-based TF-IDF, as in BERTopic). Topics are found
once over the catalog's posts; a topic then lives on the timeline through the windows in which
its posts are engaged with.

`topic_series` gives, per topic and window, the volume (engagements with its posts) and the
sentiment (sum and count of the scores of the texts written about its posts in the window: its
comments, and a post itself in the window it was published). `SentimentDropRule` defines a sharp
sentiment drop: in a window with at least ``min_texts`` texts on the topic, the mean score falls
below the topic's baseline (the mean of all its earlier texts, at least ``min_texts`` of them)
by ``threshold`` or more. `choose_drop_threshold` sets that threshold from the first part of a
timeline (a quantile of the drops seen there). `topic_alerts` raises an alert for a topic and a
window when both hold: the topic's volume bursts (`bursts.BurstDetector` on its own series) and
its sentiment drops sharply. Both rules are online: a window is judged on itself and its past.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialrec.errors import MissingDependencyError


def ctfidf_keywords(texts: Sequence[str], labels: np.ndarray, n_topics: int, k: int = 5) -> list[list[str]]:
    """The ``k`` keywords of each topic 0..n_topics-1: its posts (``texts`` with ``labels`` == t)
    form one document; a word scores tf(word, t) / (words in t) * log(1 + A / f(word)), with A the
    mean number of words per topic and f(word) its frequency over all topics. Ties: by word."""
    from socialrec.represent.lexical import tokens

    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) != len(texts):
        raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
    tf = [Counter() for _ in range(n_topics)]  # type: list[Counter[str]]
    for text, t in zip(texts, labels.tolist()):
        if 0 <= t < n_topics:
            tf[t].update(tokens(text))
    total: Counter[str] = Counter()
    for c in tf:
        total.update(c)
    sizes = [sum(c.values()) for c in tf]
    avg = float(np.mean(sizes)) if n_topics else 0.0
    out = []
    for c, size in zip(tf, sizes):
        scored = {w: n / max(size, 1) * np.log(1.0 + avg / total[w]) for w, n in c.items()}
        out.append([w for w, _ in sorted(scored.items(), key=lambda ws: (-ws[1], ws[0]))[:k]])
    return out


class PostTopics:
    """Topics of posts from their embeddings (see the module docstring).

    distance_threshold: cosine distance at which the average-linkage tree is cut (smaller:
        tighter, more topics). min_posts: the fewest posts a topic has; smaller clusters are -1.
    n_keywords: keywords per topic.
    After `fit`: ``labels_`` (topic per post, -1 for none, topics numbered by size, largest
    first), ``n_topics_``, ``keywords_`` (per topic), ``sizes_`` (posts per topic).
    """

    def __init__(self, distance_threshold: float = 0.6, min_posts: int = 5, n_keywords: int = 5) -> None:
        self.distance_threshold = distance_threshold
        self.min_posts = min_posts
        self.n_keywords = n_keywords

    def fit(self, vectors: np.ndarray, texts: Sequence[str]) -> "PostTopics":
        """Cluster ``vectors`` (one row per post; rows of zeros, posts without text, get no
        topic) and name the clusters from ``texts``."""
        if not 0.0 < self.distance_threshold <= 2.0:
            raise ValueError(f"distance_threshold must be in (0, 2] (a cosine distance), got {self.distance_threshold}")
        if self.min_posts < 1:
            raise ValueError(f"min_posts must be >= 1, got {self.min_posts}")
        x = np.asarray(vectors, dtype=np.float64)
        if x.ndim != 2 or len(x) != len(texts):
            raise ValueError(f"vectors must be (len(texts), dim), got {x.shape} for {len(texts)} texts")
        labels = np.full(len(x), -1, dtype=np.int64)
        has = np.linalg.norm(x, axis=1) > 0
        if has.sum() >= 2:
            try:
                from sklearn.cluster import AgglomerativeClustering
            except ImportError as exc:
                raise MissingDependencyError("scikit-learn", "sentiment", "topic clustering") from exc
            raw = AgglomerativeClustering(n_clusters=None, distance_threshold=self.distance_threshold,
                                          metric="cosine", linkage="average").fit_predict(x[has])
            sizes = np.bincount(raw)
            big = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] >= self.min_posts]
            renumber = np.full(len(sizes), -1, dtype=np.int64)
            renumber[big] = np.arange(len(big))
            labels[has] = renumber[raw]
        self.labels_ = labels
        self.n_topics_ = int(labels.max()) + 1 if len(labels) else 0
        self.sizes_ = np.bincount(labels[labels >= 0], minlength=self.n_topics_)
        self.keywords_ = ctfidf_keywords(texts, labels, self.n_topics_, k=self.n_keywords)
        return self


def _window_index(times: np.ndarray, starts: np.ndarray, seconds: float) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64)
    if not len(starts):
        return np.full(len(t), -1, dtype=np.int64)
    idx = np.floor((t - starts[0]) / seconds)
    idx = np.where(np.isfinite(idx), idx, -1).astype(np.int64)
    return np.where((idx >= 0) & (idx < len(starts)), idx, -1)


@dataclass(frozen=True)
class TopicSeries:
    """Per topic (rows) and window (columns): ``volume`` (engagements), ``sentiment_sum`` and
    ``texts`` (sum and count of the scores of the texts written about the topic in the window);
    ``prior_sum`` and ``prior_texts``: the same per topic for the texts before the first window
    (they count in the baseline of a drop)."""

    volume: np.ndarray
    sentiment_sum: np.ndarray
    texts: np.ndarray
    prior_sum: np.ndarray
    prior_texts: np.ndarray

    def mean_sentiment(self) -> np.ndarray:
        """Mean score per topic and window (NaN where no text was written)."""
        return np.divide(self.sentiment_sum, self.texts, out=np.full(self.texts.shape, np.nan), where=self.texts > 0)


def topic_series(topic_of_item: np.ndarray, n_topics: int, starts: np.ndarray, seconds: float, *,
                 engaged_item: np.ndarray, engaged_time: np.ndarray, text_item: np.ndarray,
                 text_time: np.ndarray, text_score: np.ndarray) -> TopicSeries:
    """`TopicSeries` on the window grid ``starts`` (windows of ``seconds``): engagements are
    (engaged_item, engaged_time) pairs, texts (text_item, text_time, text_score) triples; items
    of topic -1 and times after the grid are left out, texts before it are the prior."""
    shape = (n_topics, len(starts))
    topic_of_item = np.asarray(topic_of_item, dtype=np.int64)

    def cells(items: np.ndarray, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        items = np.asarray(items, dtype=np.int64)
        topic = topic_of_item[items] if len(items) else np.zeros(0, dtype=np.int64)
        win = _window_index(times, starts, seconds)
        ok = (topic >= 0) & (win >= 0)
        return np.ravel_multi_index((topic[ok], win[ok]), shape) if n_topics else np.zeros(0, np.int64), ok

    size = n_topics * len(starts)
    flat, _ = cells(engaged_item, engaged_time)
    volume = np.bincount(flat, minlength=size).reshape(shape)
    flat, ok = cells(text_item, text_time)
    scores = np.asarray(text_score, dtype=np.float64)[ok]
    total = np.bincount(flat, weights=scores, minlength=size).reshape(shape)
    count = np.bincount(flat, minlength=size).reshape(shape)
    t_topic = topic_of_item[np.asarray(text_item, dtype=np.int64)] if len(text_item) else np.zeros(0, np.int64)
    t_time = np.asarray(text_time, dtype=np.float64)
    early = (t_topic >= 0) & (t_time < (starts[0] if len(starts) else -np.inf))
    prior_sum = np.bincount(t_topic[early], weights=np.asarray(text_score, dtype=np.float64)[early],
                            minlength=n_topics)
    prior_n = np.bincount(t_topic[early], minlength=n_topics)
    return TopicSeries(volume=volume.astype(np.int64), sentiment_sum=total, texts=count.astype(np.int64),
                       prior_sum=prior_sum, prior_texts=prior_n.astype(np.int64))


@dataclass(frozen=True)
class SentimentDropRule:
    """A sharp sentiment drop of a topic in a window (see the module docstring).

    threshold: how far (in sentiment score, [-1, 1] scale) the window's mean must fall below the
        topic's baseline. min_texts: the fewest texts in the window, and before it, for a drop
        to be judged at all.
    """

    threshold: float = 0.3
    min_texts: int = 5

    def __post_init__(self) -> None:
        if not np.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"threshold must be a finite number >= 0, got {self.threshold}")
        if self.min_texts < 1:
            raise ValueError(f"min_texts must be >= 1, got {self.min_texts}")

    def drops(self, series: TopicSeries) -> np.ndarray:
        """Baseline minus window mean per topic and window: NaN where the window has fewer than
        ``min_texts`` texts or the topic fewer than ``min_texts`` before it (the baseline is
        the mean of every earlier text of the topic, the prior included)."""
        before_sum = np.cumsum(series.sentiment_sum, axis=1) - series.sentiment_sum + series.prior_sum[:, None]
        before_n = np.cumsum(series.texts, axis=1) - series.texts + series.prior_texts[:, None]
        judged = (series.texts >= self.min_texts) & (before_n >= self.min_texts)
        baseline = np.divide(before_sum, before_n, out=np.zeros(before_sum.shape), where=before_n > 0)
        return np.where(judged, baseline - series.mean_sentiment(), np.nan)

    def fires(self, series: TopicSeries) -> np.ndarray:
        """Boolean (topics, windows): a judged drop of at least ``threshold``."""
        d = self.drops(series)
        return np.nan_to_num(d, nan=-np.inf) >= self.threshold


def choose_drop_threshold(series: TopicSeries, upto: int, *, quantile: float = 0.95,
                          base: SentimentDropRule | None = None) -> tuple[SentimentDropRule, dict[str, Any]]:
    """The rule whose threshold is the ``quantile`` of the drops judged in windows before
    ``upto`` (only the sharpest ``1 - quantile`` of them count as sharp), at least 0; the base
    rule, unchanged, when no drop could be judged there."""
    from dataclasses import replace

    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    base = base if base is not None else SentimentDropRule()
    d = base.drops(series)[:, :upto]
    judged = d[np.isfinite(d)]
    info: dict[str, Any] = {"quantile": quantile, "windows": int(upto), "judged_topic_windows": int(len(judged))}
    if not len(judged):
        info["threshold"] = base.threshold
        return base, info
    threshold = max(0.0, float(np.quantile(judged, quantile)))
    info["threshold"] = round(threshold, 6)
    return replace(base, threshold=round(threshold, 6)), info


def topic_alerts(series: TopicSeries, detector: Any, rule: SentimentDropRule) -> list[tuple[int, int]]:
    """(topic, window) pairs where the topic's volume raises a burst alert (``detector``, a
    `bursts.BurstDetector`, on its own series) and its sentiment drops sharply (``rule``), in
    window then topic order."""
    fires = rule.fires(series)
    out = []
    for t in range(series.volume.shape[0]):
        for w in detector.alerts(series.volume[t]).tolist():
            if fires[t, w]:
                out.append((w, t))
    return [(t, w) for w, t in sorted(out)]


@dataclass(frozen=True)
class TopicTimeline:
    """The topics of a dataset's posts (`PostTopics`, fitted) and their `TopicSeries` on a grid."""

    topics: PostTopics
    series: TopicSeries
    encoder: str


def post_vectors(texts: Sequence[str], encoder: str | None = None) -> tuple[np.ndarray, str]:
    """Embeddings of the posts (through the embedding cache) and the encoder's name: ``encoder``,
    else the multilingual encoder when most posts are Chinese, Japanese or Korean and MiniLM
    otherwise (the content model's rule). Empty posts get zero rows."""
    from socialrec.represent.cache import cached_encode
    from socialrec.represent.encoders import get_encoder, mostly_cjk

    name = encoder if encoder is not None else ("use-multilingual" if mostly_cjk(list(texts)) else "minilm")
    enc = get_encoder(name)
    out = np.zeros((len(texts), enc.dim), dtype=np.float32)
    idx = [i for i, t in enumerate(texts) if t.strip()]
    if idx:
        out[idx] = cached_encode(enc, [texts[i] for i in idx])
    return out, name


def post_topic_timeline(dataset: Any, starts: np.ndarray, seconds: float, *, topics: PostTopics | None = None,
                        encoder: str | None = None, analyzer: Any = None) -> TopicTimeline:
    """Topics of ``dataset``'s posts (the item table's ``text`` column; `PostTopics`) and their
    volume and sentiment per window of the grid ``starts``: engagements are the interactions,
    texts the comments on the posts (owner "item", field "comment") and the posts themselves at
    their ``timestamp``, scored by ``analyzer`` (default `represent.sentiment.SentimentAnalyzer`)."""
    from socialrec.errors import DataError
    from socialrec.represent.sentiment import SentimentAnalyzer

    table = dataset.item_table
    if "text" not in table.columns:
        raise DataError("topics need the posts' own words: the item table has no 'text' column "
                        "(a dataset of posts, such as weibo-ced, has one)")
    texts = table["text"].fillna("").astype(str).tolist()
    vectors, name = post_vectors(texts, encoder)
    topics = (topics if topics is not None else PostTopics()).fit(vectors, texts)
    comments = dataset.texts[(dataset.texts["owner"] == "item") & (dataset.texts["field"] == "comment")]
    post_time = (table["timestamp"].to_numpy(np.float64) if "timestamp" in table.columns
                 else np.full(len(table), np.nan))
    all_texts = comments["text"].tolist() + texts
    analyzer = analyzer if analyzer is not None else SentimentAnalyzer()
    scores = analyzer.score(all_texts)
    posted = np.array([bool(t.strip()) for t in texts], dtype=bool)
    text_item = np.r_[comments["index"].to_numpy(np.int64), np.flatnonzero(posted)]
    text_time = np.r_[comments["timestamp"].to_numpy(np.float64), post_time[posted]]
    text_score = np.r_[scores[:len(comments)], scores[len(comments):][posted]]
    inter = dataset.interactions
    series = topic_series(topics.labels_, topics.n_topics_, starts, seconds,
                          engaged_item=inter["item"].to_numpy(np.int64),
                          engaged_time=inter["timestamp"].to_numpy(np.float64),
                          text_item=text_item, text_time=text_time, text_score=text_score)
    return TopicTimeline(topics=topics, series=series, encoder=name)


# The sharp-drop threshold `socialrec trends` chose on the first half of weibo-ced's daily timeline
# (benchmarks/results/weibo-trends.json, evaluation.sentiment_drop), and the fewest engagements in
# a day that make a topic's burst: what the service applies.
DEFAULT_DROP_RULE = SentimentDropRule(threshold=0.441253, min_texts=5)
TOPIC_MIN_COUNT = 10

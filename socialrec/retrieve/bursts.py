"""Trend monitoring on a timeline: windowed engagement counts, burst alerts, trend keywords.

`window_counts` bins interaction times into fixed windows. `BurstDetector` raises an alert in a
window whose count stands out from the windows before it (online: a window is judged only on
itself and its past): at least ``min_count`` engagements, at least ``ratio`` times the median of
the previous ``history`` windows, and more than that median plus ``z`` scaled median absolute
deviations (the median and MAD, not the mean and standard deviation: one earlier burst in the
baseline would otherwise hide the next).
`trend_keywords` names what drove a window: the posts engaged in it, weighted by their
engagements, as the words (jieba for Chinese, `represent.lexical.tokens`) most over-represented
in them against the whole catalog (TF-IDF). `trend_topics` turns alert windows into topics:
keywords, volume, main posts and their volume over the windows around the alert.
`recent_trends` adds, for posts with text, the embedding topics of `retrieve.topics` and their
burst + sentiment-drop alerts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from socialrec.ingest.schema import Dataset
from socialrec.represent.sentiment import items_are_posts
from socialrec.retrieve.topics import (DEFAULT_DROP_RULE, TOPIC_MIN_COUNT, PostTopics, SentimentDropRule,
                                       post_topic_timeline, topic_alerts)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_window(text: str) -> float:
    """Seconds in a window written as a number and a unit: "1d", "6h", "30m", "90s"."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ValueError(f"window must be a positive number and a unit s, m, h or d (e.g. 1d, 6h), got {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def window_counts(times: np.ndarray, window: float, *, start: float | None = None,
                  end: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(window start times, counts): every window of ``window`` seconds from ``start`` (default:
    the first time, floored to a window boundary) to the last time, empty windows included."""
    t = np.asarray(times, dtype=np.float64)
    t = t[np.isfinite(t)]
    if window <= 0:
        raise ValueError(f"window must be > 0 seconds, got {window}")
    if not len(t):
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    lo = np.floor(t.min() / window) * window if start is None else float(start)
    hi = t.max() if end is None else float(end)
    n = int(np.floor((hi - lo) / window)) + 1
    idx = np.floor((t - lo) / window).astype(np.int64)
    idx = idx[(idx >= 0) & (idx < n)]
    return lo + window * np.arange(n), np.bincount(idx, minlength=n).astype(np.int64)


@dataclass(frozen=True)
class BurstDetector:
    """Alert rule for a count series (see the module docstring).

    history: how many previous windows form the baseline.
    z: scaled median absolute deviations (1.4826 MAD, the standard deviation of normal data)
        above the baseline median a window must exceed.
    ratio: how many times the baseline median a window must reach.
    min_count: the fewest engagements in a window that can raise an alert.
    """

    history: int = 7
    z: float = 3.0
    ratio: float = 2.0
    min_count: int = 20

    def __post_init__(self) -> None:
        if self.history < 1:
            raise ValueError(f"history must be >= 1, got {self.history}")
        if self.z < 0 or self.ratio < 0 or self.min_count < 0:
            raise ValueError("z, ratio and min_count must be >= 0")

    def baseline(self, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per window, the median and scaled MAD of the previous ``history`` windows (fewer at
        the start; 0 and 0 for the first)."""
        c = np.asarray(counts, dtype=np.float64)
        med = np.zeros(len(c))
        mad = np.zeros(len(c))
        for i in range(1, len(c)):
            past = c[max(0, i - self.history):i]
            med[i] = np.median(past)
            mad[i] = 1.4826 * np.median(np.abs(past - med[i]))
        return med, mad

    def alerts(self, counts: np.ndarray) -> np.ndarray:
        """Indices of the windows that raise an alert."""
        c = np.asarray(counts, dtype=np.float64)
        med, mad = self.baseline(c)
        fire = (c >= self.min_count) & (c >= self.ratio * med) & (c > med + self.z * mad)
        return np.flatnonzero(fire)


def trend_keywords(texts: Sequence[str], weights: Sequence[float], document_frequency: Counter[str],
                   n_documents: int, k: int = 5) -> list[str]:
    """The ``k`` words that best name a trend: ``texts`` are the posts (and comments) engaged in
    the window, ``weights`` their engagement counts; a word scores its weighted frequency times
    its inverse document frequency over the ``n_documents`` of ``document_frequency``."""
    from socialrec.represent.lexical import tokens

    tf: Counter[str] = Counter()
    for text, w in zip(texts, weights):
        for word in set(tokens(text)):
            tf[word] += float(w)
    scored = {w: c * np.log((1.0 + n_documents) / (1.0 + document_frequency.get(w, 0))) for w, c in tf.items()}
    return [w for w, _ in sorted(scored.items(), key=lambda wc: (-wc[1], wc[0]))[:k]]


def document_frequencies(texts: Sequence[str]) -> Counter[str]:
    """In how many of ``texts`` each word occurs (`represent.lexical.tokens`)."""
    from socialrec.represent.lexical import tokens

    df: Counter[str] = Counter()
    for text in texts:
        df.update(set(tokens(text)))
    return df


def iso_time(t: float) -> str:
    """Unix seconds as an ISO 8601 UTC time."""
    return datetime.fromtimestamp(float(t), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def trend_topics(dataset: Dataset, windows: Sequence[int], starts: np.ndarray, seconds: float,
                 counts: np.ndarray, *, n_keywords: int = 5, around: int = 3) -> list[dict[str, Any]]:
    """One topic per window index of ``windows`` (the grid of `window_counts`: ``starts``,
    ``seconds``, ``counts``): its ``n_keywords`` keywords (`trend_keywords` over the posts engaged
    in the window, weighted by engagements, and the comments written in it), its volume, its three
    most engaged posts, and the volume of its main posts (those with at least a quarter of the top
    post's engagements in the window) ``around`` windows either side."""
    if not len(windows):
        return []
    inter = dataset.interactions
    times = inter["timestamp"].to_numpy(np.float64)
    item_of = inter["item"].to_numpy()
    post_texts = item_texts(dataset)
    df = document_frequencies(post_texts)
    comments = dataset.texts[(dataset.texts["owner"] == "item") & (dataset.texts["field"] == "comment")]
    win_of = np.floor((times - starts[0]) / seconds).astype(np.int64) if len(starts) else np.zeros(0, np.int64)
    topics = []
    for a in windows:
        per_item = Counter(item_of[win_of == a].tolist())
        items = [i for i, _ in per_item.most_common()]
        texts = [post_texts[i] for i in items]
        weights: list[float] = [float(per_item[i]) for i in items]
        lo, hi = starts[a], starts[a] + seconds
        said = comments[(comments["timestamp"] >= lo) & (comments["timestamp"] < hi)]
        texts += said["text"].tolist()
        weights += [1.0] * len(said)
        core = [i for i in items if per_item[i] >= 0.25 * per_item[items[0]]]
        on_topic = np.isin(item_of, core)
        span = range(max(0, a - around), min(len(counts), a + around + 1))
        topics.append({
            "window": int(a), "start": iso_time(lo), "volume": int(counts[a]),
            "series": [{"start": iso_time(starts[w]), "count": int((on_topic & (win_of == w)).sum())} for w in span],
            "keywords": trend_keywords(texts, weights, df, len(post_texts), k=n_keywords),
            "top_items": [str(x) for x in dataset.items.to_external(np.asarray(items[:3], dtype=np.int64))],
        })
    return topics


def item_texts(dataset: Dataset) -> list[str]:
    """Each item's own text: the item table's ``text`` column (posts), else its profile without
    reviews, else empty strings (a catalog without text: trends without keywords)."""
    if "text" in dataset.item_table.columns:
        return dataset.item_table["text"].fillna("").astype(str).tolist()
    from socialrec.errors import DataError
    from socialrec.represent.profiles import item_profiles

    try:
        return item_profiles(dataset, max_reviews=0, warn_thin=False)
    except DataError:
        return [""] * dataset.n_items


# The alert rule `socialrec trends` chose on the first half of weibo-ced's daily timeline
# (benchmarks/results/weibo-trends.json); what the service applies.
DEFAULT_DETECTOR = BurstDetector(history=7, z=1.0, ratio=2.0, min_count=20)


def recent_windows(dataset: Dataset, *, window: float = 86400.0, last: int = 30,
                   detector: BurstDetector = DEFAULT_DETECTOR) -> tuple[np.ndarray, np.ndarray, set[int], range]:
    """The engagement timeline's window starts and counts, the windows that raised an alert, and
    the range of the latest ``last`` of them (the rule sees ``detector.history`` windows before each)."""
    if last < 1:
        raise ValueError(f"last must be >= 1, got {last}")
    times = dataset.interactions["timestamp"].to_numpy(np.float64)
    finite = times[np.isfinite(times)]
    # Only the windows shown and the history their alerts look back on are counted: the cost does
    # not grow with the length of the timeline (a 1-second window over years of data).
    start = None
    if len(finite):
        start = max(np.floor(finite.min() / window), np.floor(finite.max() / window) - (last + detector.history - 1))
        start *= window
    starts, counts = window_counts(times, window, start=start)
    alerts = set(detector.alerts(counts).tolist())
    return starts, counts, alerts, range(max(0, len(counts) - last), len(counts))


def recent_trends(dataset: Dataset, *, window: float = 86400.0, last: int = 30,
                  detector: BurstDetector = DEFAULT_DETECTOR, n_keywords: int = 5, topics: bool = True) -> dict[str, Any]:
    """The latest ``last`` windows of the dataset's engagement timeline (start, count, whether it
    raised an alert; `recent_windows`) and one topic per alert among them (`trend_topics`). Where
    the items are posts with their own words and ``topics`` is true, also the embedding topics'
    alerts in those windows (a topic burst with a sharp sentiment drop) and the most engaged
    topics with their volume and sentiment per window (`topics.recent_topic_trends`). A dataset
    without timestamps has no timeline: empty lists."""
    starts, counts, alerts, shown = recent_windows(dataset, window=window, last=last, detector=detector)
    out = {
        "window_seconds": window,
        "windows": [{"start": iso_time(starts[w]), "count": int(counts[w]), "alert": w in alerts} for w in shown],
        "topics": trend_topics(dataset, [w for w in shown if w in alerts], starts, window, counts,
                               n_keywords=n_keywords),
        "topic_alerts": [], "post_topics": [],
    }
    if topics and items_are_posts(dataset) and len(starts):
        out.update(recent_topic_trends(dataset, starts, window, shown, detector))
    return out


def recent_topic_trends(dataset: Dataset, starts: np.ndarray, seconds: float, shown: range, detector: BurstDetector, *,
                        rule: SentimentDropRule = DEFAULT_DROP_RULE, topic_min_count: int = TOPIC_MIN_COUNT,
                        n_topics: int = 5, topics: PostTopics | None = None) -> dict[str, Any]:
    """For the windows ``shown`` of the grid ``starts``: the topic alerts raised in them (a burst
    of the topic's volume, ``detector`` with ``topic_min_count``, and a sharp drop by ``rule``)
    and the ``n_topics`` topics with the most engagements there, with their volume and sentiment
    per shown window. Texts before the grid count in the drop baseline."""
    from dataclasses import replace

    tl = post_topic_timeline(dataset, starts, seconds, topics=topics)
    series, model = tl.series, tl.topics
    mean, drops = series.mean_sentiment(), rule.drops(series)
    det = replace(detector, min_count=topic_min_count)
    cols = np.arange(shown.start, shown.stop, dtype=np.int64)
    alerts = [{"kind": "burst+sentiment_drop", "topic": t, "keywords": model.keywords_[t], "start": iso_time(starts[w]),
               "volume": int(series.volume[t, w]), "sentiment": round(float(mean[t, w]), 4),
               "drop": round(float(drops[t, w]), 4)}
              for t, w in topic_alerts(series, det, rule) if w in shown]
    volume = series.volume[:, cols].sum(axis=1) if len(cols) else np.zeros(model.n_topics_, dtype=np.int64)
    top = [t for t in np.argsort(-volume, kind="stable")[:n_topics].tolist() if volume[t] > 0]

    def sentiment(total: float, n: int) -> float | None:
        return round(total / n, 4) if n else None

    out = [{"topic": t, "keywords": model.keywords_[t], "volume": int(volume[t]),
            "sentiment": sentiment(float(series.sentiment_sum[t, cols].sum()), int(series.texts[t, cols].sum())),
            "series": [{"start": iso_time(starts[w]), "volume": int(series.volume[t, w]),
                        "sentiment": sentiment(float(series.sentiment_sum[t, w]), int(series.texts[t, w]))}
                       for w in cols.tolist()]} for t in top]
    return {"topic_alerts": alerts, "post_topics": out}

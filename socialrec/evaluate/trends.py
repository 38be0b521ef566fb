"""Trend monitoring measured on a dataset's timeline (`socialrec trends`).

The engagement timeline is cut into windows (`retrieve.bursts.window_counts`). Bursts are found
in hindsight (`hindsight_bursts`): windows that hold the most engagements within ``radius``
windows either side and stand ``ratio`` times above the median of the ``2 * history`` windows
around them. The online `BurstDetector` (each window judged on its past only) is measured
against them: burst recall is the share of the ``top`` largest hindsight bursts with an alert
within one window of their peak; a false alarm is an alert more than one window from every
hindsight burst, counted per day of timeline. The detector's ``z`` and ``ratio`` are chosen on
the first half of the windows (`choose_detector`: the best recall of that half's largest bursts
within a false-alarm budget); ``evaluation`` reports the second half, ``whole_timeline`` all
windows with the chosen detector. Each burst alert is named by its keywords
(`retrieve.bursts.trend_topics`, listed under ``burst_topics``).

Where the items are posts with their own words (weibo-ced), ``topics`` are the posts' clusters
(`retrieve.topics.PostTopics` on their multilingual embeddings, named by c-TF-IDF keywords) with
their volume and sentiment per window, and a second alert rule runs per topic
(`retrieve.topics.topic_alerts`): the topic's own volume bursts (the chosen detector on its
series, with ``topic_min_count``) while its sentiment drops sharply. What counts as sharp is
chosen on the first half of the windows like the burst rule: the ``drop_quantile`` of the drops
judged there (`retrieve.topics.choose_drop_threshold`). Those alerts join ``alerts`` with kind
"burst+sentiment_drop" (the engagement bursts have kind "burst").
"""

from __future__ import annotations

from typing import Any

import numpy as np

from socialrec.ingest.schema import Dataset
from socialrec.retrieve.bursts import BurstDetector, iso_time, parse_window, trend_topics, window_counts
from socialrec.retrieve.topics import PostTopics, choose_drop_threshold, post_topic_timeline, topic_alerts


def hindsight_bursts(counts: np.ndarray, *, radius: int = 3, history: int = 7, ratio: float = 2.0,
                     min_count: int = 20) -> np.ndarray:
    """Peak windows of bursts, by count descending (see the module docstring)."""
    c = np.asarray(counts, dtype=np.float64)
    n = len(c)
    peaks = []
    for i in range(n):
        lo, hi = max(0, i - radius), min(n, i + radius + 1)
        if c[i] < min_count or c[i] < c[lo:hi].max() or (c[lo:i] == c[i]).any():
            continue  # not the (first) maximum of its neighbourhood
        around = np.concatenate([c[max(0, i - history - 1):max(0, i - 1)], c[i + 2:i + history + 2]])
        if c[i] >= ratio * max(float(np.median(around)) if len(around) else 0.0, 1.0):
            peaks.append(i)
    peaks_arr = np.asarray(peaks, dtype=np.int64)
    return peaks_arr[np.argsort(-c[peaks_arr], kind="stable")] if len(peaks_arr) else peaks_arr


def evaluate_alerts(alerts: np.ndarray, bursts: np.ndarray, n_windows: int, window: float,
                    top: int = 20) -> dict[str, Any]:
    """Recall of the ``top`` largest ``bursts`` (an alert within one window of the peak) and false
    alarms (alerts more than one window from every burst) per day."""
    alerts = np.asarray(alerts, dtype=np.int64)
    largest = np.asarray(bursts[:top], dtype=np.int64)
    found = [bool(len(alerts) and np.abs(alerts - p).min() <= 1) for p in largest]
    near_any = np.array([bool(len(bursts) and np.abs(bursts - a).min() <= 1) for a in alerts], dtype=bool)
    days = n_windows * window / 86400.0
    n_false = int((~near_any).sum()) if len(alerts) else 0
    return {
        "burst_recall": float(np.mean(found)) if found else float("nan"),
        "n_bursts": int(len(largest)), "n_hindsight_bursts": int(len(bursts)), "n_alerts": int(len(alerts)),
        "false_alarms": n_false, "false_alarms_per_day": n_false / days if days else float("nan"),
        "alert_precision": float(near_any.mean()) if len(alerts) else float("nan"),
        "days": round(days, 3),
    }


HINDSIGHT_RATIO = 2.0  # a hindsight burst: at least twice the median around it
Z_GRID = (0.0, 1.0, 2.0, 3.0)
RATIO_GRID = (1.5, 2.0, 3.0)


def choose_detector(counts: np.ndarray, window: float, *, top: int = 20, max_false_alarms_per_day: float = 0.05,
                    base: BurstDetector | None = None) -> tuple[BurstDetector, list[dict[str, Any]]]:
    """The (z, ratio) of `Z_GRID` x `RATIO_GRID` with the best recall of the ``top`` largest
    hindsight bursts of ``counts`` among those within the false-alarm budget (ties: fewer false
    alarms, then the stricter rule); the base detector when none is within it."""
    from dataclasses import replace

    base = base if base is not None else BurstDetector()
    bursts = hindsight_bursts(counts, history=base.history, ratio=HINDSIGHT_RATIO, min_count=base.min_count)
    tried = []
    for z in Z_GRID:
        for ratio in RATIO_GRID:
            det = replace(base, z=z, ratio=ratio)
            e = evaluate_alerts(det.alerts(counts), bursts, len(counts), window, top=top)
            tried.append({"z": z, "ratio": ratio, "burst_recall": e["burst_recall"],
                          "false_alarms_per_day": round(e["false_alarms_per_day"], 6)})
    ok = [t for t in tried if t["false_alarms_per_day"] <= max_false_alarms_per_day]
    if not ok:
        return base, tried
    best = max(ok, key=lambda t: (t["burst_recall"], -t["false_alarms_per_day"], t["z"], t["ratio"]))
    return replace(base, z=best["z"], ratio=best["ratio"]), tried


def _round(x: float, digits: int = 4) -> float | None:
    return None if not np.isfinite(x) else round(float(x), digits)


def topics_part(dataset: Dataset, starts: np.ndarray, counts: np.ndarray, seconds: float, det: BurstDetector, *,
                topics: PostTopics | None = None, topic_min_count: int = 10, drop_quantile: float = 0.95,
                max_topics: int | None = None) -> dict[str, Any]:
    """The embedding topics of the posts with their volume and sentiment per window (the windows
    where the topic was engaged with or written about), the topic alerts (a burst of the topic's
    volume and a sharp sentiment drop) and how the drop threshold was chosen (first half)."""
    from dataclasses import replace

    tl = post_topic_timeline(dataset, starts, seconds, topics=topics)
    series, model = tl.series, tl.topics
    half = len(counts) // 2
    rule, chosen = choose_drop_threshold(series, half, quantile=drop_quantile)
    topic_det = replace(det, min_count=topic_min_count)
    fired = topic_alerts(series, topic_det, rule)
    mean = series.mean_sentiment()
    drops = rule.drops(series)
    labels = model.labels_
    external = dataset.items.to_external(np.arange(dataset.n_items, dtype=np.int64))
    out_topics = []
    for t in range(model.n_topics_ if max_topics is None else min(max_topics, model.n_topics_)):
        active = np.flatnonzero((series.volume[t] > 0) | (series.texts[t] > 0))
        n_texts = int(series.texts[t].sum())
        posts = np.flatnonzero(labels == t)
        engaged = series.volume[t]
        out_topics.append({
            "topic": t, "keywords": model.keywords_[t], "n_posts": int(model.sizes_[t]),
            "volume": int(engaged.sum()),
            "sentiment": _round(series.sentiment_sum[t].sum() / n_texts) if n_texts else None,
            "n_texts": n_texts,
            "posts": [str(x) for x in external[posts[:5]]],
            "series": [{"window": int(w), "start": iso_time(starts[w]), "volume": int(engaged[w]),
                        "sentiment": _round(mean[t, w]), "texts": int(series.texts[t, w])} for w in active],
        })
    alerts = [{"kind": "burst+sentiment_drop", "topic": t, "keywords": model.keywords_[t], "window": int(w),
               "start": iso_time(starts[w]), "volume": int(series.volume[t, w]), "sentiment": _round(mean[t, w]),
               "drop": _round(drops[t, w])} for t, w in fired]
    n_first = sum(1 for _, w in fired if w < half)
    days = lambda n: n * seconds / 86400.0  # noqa: E731
    evaluation = {
        "threshold": rule.threshold, "min_texts": rule.min_texts, "chosen_on": chosen,
        "topic_detector": {"history": topic_det.history, "z": topic_det.z, "ratio": topic_det.ratio,
                           "min_count": topic_det.min_count},
        "topic_bursts": int(sum(len(topic_det.alerts(series.volume[t])) for t in range(model.n_topics_))),
        "alerts_first_half": n_first, "alerts_second_half": len(fired) - n_first,
        "alerts_per_day_second_half": round((len(fired) - n_first) / max(days(len(counts) - half), 1e-12), 6),
    }
    info = {"encoder": tl.encoder, "distance_threshold": model.distance_threshold, "min_posts": model.min_posts,
            "n_topics": model.n_topics_, "posts_in_topics": int((labels >= 0).sum()), "n_posts": int(len(labels)),
            "engagements_in_topics": int(series.volume.sum())}
    return {"topics": out_topics, "alerts": alerts, "evaluation": evaluation, "model": info}


def trends_document(dataset: Dataset, *, window: str = "1d", detector: BurstDetector | None = None,
                    top_bursts: int = 20, n_keywords: int = 5, topics: PostTopics | None = None,
                    topic_min_count: int = 10, drop_quantile: float = 0.95, with_topics: bool = True) -> dict[str, Any]:
    """The JSON document of `socialrec trends` (see the module docstring): windows with counts,
    the burst alerts with their keywords (``burst_topics``), the embedding topics with their
    volume and sentiment over time and the topic alerts (when the items are posts with text and
    ``with_topics``), and the evaluation."""
    seconds = parse_window(window)
    inter = dataset.interactions
    times = inter["timestamp"].to_numpy(np.float64)
    starts, counts = window_counts(times, seconds)
    half = len(counts) // 2
    tried: list[dict[str, Any]] = []
    if detector is None:
        detector, tried = choose_detector(counts[:half], seconds, top=top_bursts)
    det = detector
    alerts = det.alerts(counts)
    bursts = hindsight_bursts(counts, history=det.history, ratio=HINDSIGHT_RATIO, min_count=det.min_count)
    # The second half, judged with the whole past before it (alerts and bursts by window index).
    evaluation = evaluate_alerts(alerts[alerts >= half], bursts[bursts >= half], len(counts) - half, seconds,
                                 top=top_bursts)
    evaluation["part"] = f"second half of the timeline (windows {half}..{len(counts) - 1}), detector chosen on the first"
    evaluation["whole_timeline"] = evaluate_alerts(alerts, bursts, len(counts), seconds, top=top_bursts)
    evaluation["detector"] = {"history": det.history, "z": det.z, "ratio": det.ratio, "min_count": det.min_count}
    evaluation["tuning"] = tried

    burst_topics = trend_topics(dataset, alerts, starts, seconds, counts, n_keywords=n_keywords)
    named = {t["window"]: t["keywords"] for t in burst_topics}
    doc: dict[str, Any] = {
        "dataset": dataset.name, "window": window, "window_seconds": seconds,
        "windows": [{"start": iso_time(s), "count": int(c)} for s, c in zip(starts, counts)],
        "topics": [],
        "alerts": [{"kind": "burst", "window": int(a), "start": iso_time(starts[a]), "count": int(counts[a]),
                    "keywords": named.get(int(a), [])} for a in alerts],
        "burst_topics": burst_topics,
        "bursts": [{"window": int(b), "start": iso_time(starts[b]), "count": int(counts[b])}
                   for b in bursts[:top_bursts]],
        "evaluation": evaluation,
    }
    from socialrec.represent.sentiment import items_are_posts

    if with_topics and items_are_posts(dataset):
        part = topics_part(dataset, starts, counts, seconds, det, topics=topics, topic_min_count=topic_min_count,
                           drop_quantile=drop_quantile)
        doc["topics"] = part["topics"]
        doc["alerts"] += part["alerts"]
        doc["topic_model"] = part["model"]
        evaluation["sentiment_drop"] = part["evaluation"]
    return doc

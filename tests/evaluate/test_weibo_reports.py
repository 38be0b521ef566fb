"""The rumour policy's weight choice and the trends document on data with a known burst."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.evaluate.rumours import choose_policy
from socialrec.ingest.schema import build_dataset


def row(w: float, share: float, ndcg: float, protect: int = 0) -> dict:
    return {"weight": w, "protect": protect, "rumour_share@10_valid": share, "ndcg@10_valid": ndcg,
            "rumour_share@10": share, "ndcg@10": ndcg}


def test_choose_policy_takes_the_smallest_weight_that_halves_within_the_loss() -> None:
    policy = [row(0.0, 0.8, 0.100), row(0.5, 0.5, 0.099), row(1.0, 0.39, 0.097), row(2.0, 0.2, 0.099),
              row(3.0, 0.1, 0.090), row(1.0, 0.4, 0.098, protect=3)]
    # 1.0 (both) and 2.0 halve 0.8 within 5%: the smallest weight, the better NDCG of the two; 3.0 loses 10%
    assert (choose_policy(policy, 10, 0.05)["weight"], choose_policy(policy, 10, 0.05)["protect"]) == (1.0, 3)
    assert choose_policy(policy, 10, 0.01)["weight"] == 2.0  # within 1%, only 2.0 halves it
    # Nothing halves within 1%: the lowest share within it.
    assert choose_policy([row(0.0, 0.8, 0.1), row(0.5, 0.5, 0.0995), row(1.0, 0.3, 0.09)], 10, 0.01)["weight"] == 0.5
    assert choose_policy([row(0.0, 0.8, 0.1), row(1.0, 0.1, 0.05)], 10, 0.05)["weight"] == 0.0


def test_protected_head_keeps_its_places() -> None:
    from socialrec.rank.rumour import demote

    scores = np.array([[6.0, 5.0, 4.0, 3.0, 2.0, 1.0]])
    risk = np.array([1.0, 1.0, 1.0, 0.0, 1.0, 0.0])
    order = np.argsort(-demote(scores, risk, 5.0, protect=2)[0], kind="stable").tolist()
    assert order[:2] == [0, 1]  # the first two stay, rumours or not
    assert order[2:] == [3, 5, 2, 4]  # below them the plain posts come first
    plain = np.argsort(-demote(scores, risk, 5.0)[0], kind="stable").tolist()
    assert plain[:2] == [3, 5]


def test_trends_document_finds_the_burst_and_names_it_in_chinese() -> None:
    pytest.importorskip("jieba")
    from socialrec.evaluate.trends import trends_document
    from socialrec.retrieve.bursts import BurstDetector

    rng = np.random.default_rng(0)
    day = 86400.0
    posts = {"quake": "四川雅安发生强烈地震，救援队伍赶赴灾区", "food": "周末美食推荐：火锅和烧烤",
             "film": "新电影票房破纪录，观众好评如潮", "match": "足球联赛今晚开打，球迷热情高涨"}
    rows = []
    for d in range(60):  # a quiet timeline, 8 engagements a day on the everyday posts
        for j in range(8):
            rows.append((f"u{rng.integers(200)}", ["food", "film", "match"][j % 3], d * day + 3600 * j))
    for j in range(120):  # day 40: everyone reacts to the earthquake
        rows.append((f"u{j}", "quake", 40 * day + 600 * j))
    inter = pd.DataFrame(rows, columns=["user", "item", "timestamp"])
    items = pd.DataFrame({"id": list(posts), "text": list(posts.values())})
    said = ["雅安地震，为灾区祈福", "地震无情人有情，雅安加油", "希望雅安的朋友平安"]
    texts = pd.DataFrame({"owner": "item", "id": "quake", "field": "comment", "text": said,
                          "timestamp": 40 * day + 3600.0 * np.arange(3)})
    ds = build_dataset("toy-weibo", inter, items=items, texts=texts)
    doc = trends_document(ds, window="1d", detector=BurstDetector(min_count=20), top_bursts=5, with_topics=False)
    assert [(a["kind"], a["window"]) for a in doc["alerts"]] == [("burst", 40)]
    assert doc["bursts"][0]["window"] == 40 and doc["bursts"][0]["count"] == 128
    assert doc["topics"] == [] and "topic_model" not in doc  # embedding topics left out
    topic = doc["burst_topics"][0]
    assert topic["volume"] == 128 and topic["top_items"][0] == "quake"
    assert [w["count"] for w in topic["series"]] == [0, 0, 0, 120, 0, 0, 0]
    assert topic["keywords"][:2] in (["雅安", "地震"], ["地震", "雅安"])  # in the post and the comments
    assert doc["evaluation"]["whole_timeline"]["burst_recall"] == 1.0
    assert doc["evaluation"]["whole_timeline"]["false_alarms"] == 0


def test_recent_trends_shows_the_last_windows_and_their_alerts() -> None:
    pytest.importorskip("jieba")
    from socialrec.retrieve.bursts import BurstDetector, recent_trends

    day = 86400.0
    rows = [(f"u{j % 7}", "a", d * day + 60 * j) for d in range(20) for j in range(10)]
    rows += [(f"v{j}", "b", 17 * day + 60 * j) for j in range(60)]
    items = pd.DataFrame({"id": ["a", "b"], "text": ["每天的天气预报", "突发：长江洪水警报，沿岸居民紧急撤离"]})
    ds = build_dataset("toy", pd.DataFrame(rows, columns=["user", "item", "timestamp"]), items=items)
    out = recent_trends(ds, window=day, last=5, detector=BurstDetector(min_count=20), topics=False)
    assert [w["count"] for w in out["windows"]] == [10, 10, 70, 10, 10]
    assert [w["alert"] for w in out["windows"]] == [False, False, True, False, False]
    assert len(out["topics"]) == 1 and out["topics"][0]["top_items"][0] == "b"
    assert "洪水" in out["topics"][0]["keywords"]


def test_recent_trends_counts_only_the_windows_it_needs() -> None:
    from socialrec.retrieve.bursts import recent_trends

    years = 86400.0 * 365 * 4
    inter = pd.DataFrame({"user": ["a", "b", "c"], "item": ["x", "x", "y"], "timestamp": [0.0, years, years + 0.5]})
    out = recent_trends(build_dataset("long", inter), window=1.0, last=3)  # a 1-second window over 4 years
    assert [w["count"] for w in out["windows"]] == [0, 0, 2]
    # A burst in a catalog without text: a topic without keywords, not an error.
    burst = pd.DataFrame({"user": [f"u{j}" for j in range(30)], "item": "x", "timestamp": 8.0})
    many = pd.concat([pd.DataFrame({"user": "q", "item": "x", "timestamp": np.arange(8.0)}), burst])
    out = recent_trends(build_dataset("no-text", many), window=1.0, last=2)
    assert out["windows"][-1]["count"] == 30 and out["windows"][-1]["alert"]
    assert out["topics"][0]["keywords"] == [] and out["topics"][0]["top_items"] == ["x"]


FITS: list[tuple[int, int]] = []  # (validation users, validation items) each fit of RecordingPop saw


class RecordingPop:
    """Popularity that records the validation items each fit receives (built lazily: the base
    class comes from the package)."""

    @staticmethod
    def make():  # noqa: ANN205
        from socialrec.retrieve.popular import MostPopular

        class Recording(MostPopular):
            def _fit(self, train):  # noqa: ANN001, ANN202
                v = train.valid_items
                FITS.append((0, 0) if v is None else (int((np.diff(v.tocsr().indptr) > 0).sum()), int(v.nnz)))
                super()._fit(train)

        return Recording()


def test_held_out_selection_judges_the_policy_on_users_the_base_did_not_learn_from(tmp_path) -> None:
    pytest.importorskip("jieba")
    from socialrec.evaluate.rumours import rumour_policy_curve
    from socialrec.ingest.datasets.weibo import load_weibo_ced
    from socialrec.ingest.split import make_split
    from tests.cli.test_weibo_cli import small_export

    ds = load_weibo_ced(small_export(tmp_path / "data"))
    split = make_split(ds, "temporal", seed=0)
    valid = split.matrix("valid")
    n_valid_users = int((np.diff(valid.indptr) > 0).sum())
    FITS.clear()
    doc = rumour_policy_curve(split, RecordingPop.make(), weights=(0.0, 1.0), protect=(0,), select_on="held-out")
    # One fit as usual (every validation user), one with the first half only for the selection.
    assert sorted(u for u, _ in FITS) == [n_valid_users // 2, n_valid_users]
    assert doc["select_on"] == "held-out" and doc["n_selection_users"] == n_valid_users - n_valid_users // 2
    FITS.clear()
    plain = rumour_policy_curve(split, RecordingPop.make(), weights=(0.0, 1.0), protect=(0,))
    assert FITS == [(n_valid_users, int(valid.nnz))] and plain["n_selection_users"] is None
    assert plain["policy"][1]["rumour_share@10"] == doc["policy"][1]["rumour_share@10"]  # test rows: same model
    with pytest.raises(ValueError, match="select_on"):
        rumour_policy_curve(split, RecordingPop.make(), select_on="test")

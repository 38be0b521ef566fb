"""The weibo-ced loader: both date formats, the post time forms, bad rows, and the real files."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from socialrec.errors import DataError
from socialrec.ingest.datasets.weibo import load_weibo_ced, parse_engagement_time, parse_post_time, rumour_labels
from socialrec.ingest.read import BadRowsWarning

ITEMS_HEAD = "item_id\tlabel\ttime\treposts\tcomments\tlikes\tauthor_followers\ttext\n"
INTER_HEAD = "uid\titem_id\tlabel\tdate\tmid\tparent_uid\ttext\n"
EDGES_HEAD = "src_uid\tdst_uid\tn_reposts_or_replies\n"


def _utc(*args: int) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def write(root: Path, items: str, inter: str, edges: str = "") -> Path:
    folder = root / "weibo-ced"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "items.tsv").write_text(ITEMS_HEAD + items, encoding="utf-8")
    (folder / "interactions.tsv").write_text(INTER_HEAD + inter, encoding="utf-8")
    (folder / "social_edges.tsv").write_text(EDGES_HEAD + edges, encoding="utf-8")
    return root


# p1: unix time 2012-12-31 16:00 UTC = 2013-01-01 00:00 in Beijing; p2: Weibo's API form.
P1 = "p1\trumor\t1356969600\t10\t2\t0\t1000\t网传某地发生地震，请转发！\n"
P2 = "p2\tnonrumor\tSat Jun 29 12:40:09 +0800 2013\t5\t1\t3\t\t今天天气很好，我们去公园散步。\n"


def test_both_date_formats_and_post_time_forms(tmp_path: Path) -> None:
    inter = ("u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t假的吧？\n"     # ISO, Beijing time
             "u2\tp1\trumor\t01月02日 12:45\tm2\tu1\t\n"               # month-day: the post's year (2013)
             "u1\tp2\tnonrumor\t06月30日 09:00\tm3\t\t真好\n"
             "u2\tp2\tnonrumor\t2013-06-29 13:00:00\tm4\t\t\n")
    ds = load_weibo_ced(write(tmp_path, P1 + P2, inter, "u2\tu1\t3\n"))
    assert (ds.n_users, ds.n_items) == (2, 2)
    t = ds.interactions.sort_values(["user", "item"])["timestamp"].to_numpy()
    # u1-p1 at 08:00 Beijing = 00:00 UTC; u1-p2 on 30 June 2013 01:00 UTC; u2-p1 on 2 Jan 2013 04:45 UTC
    assert t.tolist() == [_utc(2013, 1, 1, 0, 0), _utc(2013, 6, 30, 1, 0), _utc(2013, 1, 2, 4, 45),
                          _utc(2013, 6, 29, 5, 0)]
    assert ds.item_table["timestamp"].tolist() == [1356969600.0, _utc(2013, 6, 29, 4, 40, 9)]
    assert ds.item_table["rumour"].tolist() == [True, False]
    assert np.isnan(ds.item_table["author_followers"].iloc[1])
    kinds = dict(zip(zip(ds.interactions["user"], ds.interactions["item"]), ds.interactions["kind"]))
    assert kinds[(0, 0)] == "comment" and kinds[(1, 0)] == "repost"
    # a comment is the user's own text and a text about the post; the post is the item's description
    own = ds.texts[(ds.texts["owner"] == "user")]
    assert sorted(own["text"]) == ["假的吧？", "真好"]
    about = ds.texts[(ds.texts["owner"] == "item") & (ds.texts["field"] == "comment")]
    assert sorted(about["text"]) == ["假的吧？", "真好"]
    assert ds.social_directed and len(ds.social) == 1 and ds.social["weight"].iloc[0] == 3
    assert rumour_labels(ds).tolist() == [1, 0]
    assert ds.item_titles([0]) == ["网传某地发生地震，请转发！"]  # a post's name is its text's start


def test_month_day_date_rolls_into_the_next_year() -> None:
    post = _utc(2012, 12, 30, 4, 0)  # 30 Dec 2012, noon in Beijing
    assert parse_engagement_time("01月03日 08:00", post) == _utc(2013, 1, 3, 0, 0)
    assert parse_engagement_time("12月31日 08:00", post) == _utc(2012, 12, 31, 0, 0)
    assert parse_engagement_time("2012-12-31 08:00:00", post) == _utc(2012, 12, 31, 0, 0)
    assert parse_post_time("1356969600") == 1356969600.0
    for bad in ("13月01日 08:00", "2012/12/31 08:00", "yesterday"):
        with pytest.raises(ValueError):
            parse_engagement_time(bad, post)


def test_bad_date_names_file_line_and_field(tmp_path: Path) -> None:
    inter = "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\nu2\tp1\trumor\t2013-02-30 08:00:00\tm2\t\t\n"
    root = write(tmp_path, P1, inter)
    with pytest.raises(DataError) as err:
        load_weibo_ced(root)
    msg = str(err.value)
    assert "interactions.tsv" in msg and "line 3" in msg and "date" in msg and "2013-02-30" in msg
    with pytest.warns(BadRowsWarning, match="skipped 1 row"):
        ds = load_weibo_ced(root, skip_bad_rows=True)
    assert len(ds.interactions) == 1


def test_bad_post_rows(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"items.tsv.*line 2.*time"):
        load_weibo_ced(write(tmp_path / "a", "p1\trumor\tlast tuesday\t1\t1\t1\t1\t文本\n",
                             "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\n"))
    with pytest.raises(DataError, match=r"items.tsv.*line 2.*label"):
        load_weibo_ced(write(tmp_path / "b", "p1\tmaybe\t1356969600\t1\t1\t1\t1\t文本\n",
                             "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\n"))
    with pytest.raises(DataError, match=r"interactions.tsv.*line 2.*item_id"):
        load_weibo_ced(write(tmp_path / "c", P1, "u1\tp9\trumor\t2013-01-01 08:00:00\tm1\t\t\n"))
    with pytest.raises(DataError, match=r"interactions.tsv.*line 2.*label"):
        load_weibo_ced(write(tmp_path / "e", P1, "u1\tp1\tnonrumor\t2013-01-01 08:00:00\tm1\t\t\n"))
    with pytest.raises(DataError, match=r"items.tsv.*line 3.*listed twice"):
        load_weibo_ced(write(tmp_path / "d", P1 + P1, "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\n"))


def test_unicode_line_separator_inside_a_post_stays_in_its_row(tmp_path: Path) -> None:
    post = "p1\trumor\t1356969600\t1\t1\t1\t1\t第一行\u2028第二行\x85完\n"
    ds = load_weibo_ced(write(tmp_path, post, "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\n"))
    assert ds.item_table["text"].iloc[0] == "第一行\u2028第二行\x85完"


def test_repeated_engagement_rows_are_one(tmp_path: Path) -> None:
    row = "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t{}\t转发\n"
    ds = load_weibo_ced(write(tmp_path, P1, row.format("a") + row.format("b")))
    assert len(ds.interactions) == 1
    assert "1 repeated" in ds.notes[0]


def test_real_weibo_counts(real_data: Path) -> None:
    ds = load_weibo_ced(real_data)
    assert (ds.n_users, ds.n_items) == (5362, 2692)
    assert len(ds.social) == 6907 and ds.social_directed
    assert int(ds.item_table["rumour"].sum()) == 1271
    # the README's 40,051 records less 42 repeated rows; 19,929 with text less the repeats among them
    assert len(ds.interactions) == 40009
    assert (ds.interactions["kind"] == "comment").sum() == 19899
    assert not ds.interactions["timestamp"].isna().any()
    # no engagement precedes its post by more than a minute (dates are Beijing time)
    post_time = ds.item_table["timestamp"].to_numpy()[ds.interactions["item"].to_numpy()]
    assert (ds.interactions["timestamp"].to_numpy() >= post_time - 60).all()


def test_bad_count_and_edge_rows_name_the_file_column(tmp_path: Path) -> None:
    ok = "u1\tp1\trumor\t2013-01-01 08:00:00\tm1\t\t\n"
    with pytest.raises(DataError, match=r"items.tsv.*line 2.*reposts"):
        load_weibo_ced(write(tmp_path / "a", "p1\trumor\t1356969600\tmany\t1\t1\t1\t文本\n", ok))
    with pytest.raises(DataError, match=r"social_edges.tsv.*line 2.*n_reposts_or_replies"):
        load_weibo_ced(write(tmp_path / "b", P1, ok, "u1\tu2\tthree\n"))

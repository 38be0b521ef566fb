"""The dataset loaders: exact counts on the real data, and one clear error per kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from socialrec.errors import DataError
from socialrec.ingest.datasets.amazon import load_amazon_games, load_llmrank_candidates
from socialrec.ingest.datasets.lastfm import load_lastfm
from socialrec.ingest.datasets.movielens import load_movielens_100k
from socialrec.ingest.datasets.recbole import load_recbole
from socialrec.ingest.datasets.recdiff import load_ciao_recdiff
from socialrec.ingest.datasets.tang import CIAO_DUPLICATE_ROWS, load_tang, read_tang_ratings
from socialrec.ingest.read import BadRowsWarning
from socialrec.ingest.schema import SPLIT_TEST, SPLIT_TRAIN, SPLIT_VALID, Dataset, DuplicateRowsWarning


def counts(ds: Dataset) -> tuple[object, ...]:
    s = ds.summary()
    return s["users"], s["items"], s["interactions"], s["social_edges"]


def title_of(ds: Dataset, item: str) -> str:
    return ds.item_titles([ds.items.to_index(item)])[0]


def assert_error(exc: pytest.ExceptionInfo[DataError], file: str, line: int | None, field: str | None) -> None:
    message = str(exc.value)
    assert file in message, message
    if line is not None:
        assert f"line {line}" in message, message
    if field is not None:
        assert f"field '{field}'" in message, message


# --------------------------------------------------------------------------------- real data


@pytest.mark.realdata
def test_movielens_counts_and_values(real_movielens: Dataset) -> None:
    ds = real_movielens
    assert counts(ds) == (943, 1682, 100_000, 0)
    assert ds.rating_range == (1, 5)
    assert set(ds.interactions["value"].unique()) == {1, 2, 3, 4, 5}
    assert not ds.interactions["timestamp"].isna().any()
    assert list(ds.items.external_ids[:3]) == ["1", "2", "3"] and list(ds.users.external_ids[:2]) == ["1", "2"]
    assert title_of(ds, "1") == "Toy Story (1995)"
    toy = ds.item_table.iloc[ds.items.to_index("1")]
    assert toy["genres"] == ("Animation", "Children's", "Comedy") and toy["category"] == "Animation"
    assert title_of(ds, "1633").startswith("Á köldum klaka")  # latin-1
    assert ds.user_table.iloc[0][["age", "gender", "occupation", "zip"]].tolist() == [24, "M", "technician", "85711"]
    assert ds.texts["field"].value_counts().to_dict() == {"title": 1682, "genre": 1682}


@pytest.mark.realdata
def test_lastfm_counts_and_values(real_lastfm: Dataset) -> None:
    ds = real_lastfm
    assert counts(ds) == (1892, 17_632, 92_834, 12_717)
    assert not ds.social_directed and len(ds.social) == 25_434
    assert (ds.social["kind"] == "friend").all() and (ds.interactions["kind"] == "play").all()
    assert title_of(ds, "1") == "MALICE MIZER"
    row = ds.interactions[(ds.interactions["user"] == ds.users.to_index("2"))
                          & (ds.interactions["item"] == ds.items.to_index("51"))]
    assert row["value"].tolist() == [13883]
    tags = ds.item_table["tags"]
    assert tags.map(len).max() == 10 and (ds.item_table["category"].isna() == (tags.map(len) == 0)).all()
    assert ds.item_table["category"].isna().sum() == 5499
    assert ds.item_table.iloc[0]["category"] == tags.iloc[0][0]
    assert any("390 artist(s)" in n for n in ds.notes)
    assert ds.texts["text"].str.contains("rock français").any()  # tags.dat is latin-1
    assert len(ds.tag_assignments) == 184_941 and (ds.tag_assignments["user"] >= 0).all()


@pytest.mark.realdata
def test_lastfm_recbole_matches_hetrec(real_lastfm_recbole: Dataset, real_lastfm: Dataset) -> None:
    ds = real_lastfm_recbole
    assert counts(ds) == (1892, 17_632, 92_834, 12_717)
    assert not ds.social_directed and ds.interactions["value"].isna().all()
    assert list(ds.users.external_ids) == list(real_lastfm.users.external_ids)
    assert list(ds.items.external_ids) == list(real_lastfm.items.external_ids)
    assert ds.item_table["title"].tolist() == real_lastfm.item_table["title"].tolist()
    np.testing.assert_array_equal(ds.social_matrix().toarray(), real_lastfm.social_matrix().toarray())


@pytest.mark.realdata
def test_ciao_tang_counts(real_ciao: Dataset, real_data: Path) -> None:
    ds = real_ciao
    raw = read_tang_ratings(real_data / "ciao" / "tang")
    assert len(raw) == 284_086  # the README's count: rows of rating.mat, duplicates included
    assert counts(ds) == (7375, 105_114, 284_086 - CIAO_DUPLICATE_ROWS, 111_781)
    assert ds.social_directed and (ds.social["kind"] == "trust").all()
    assert ds.interactions["value"].isna().sum() == 34  # rating 0: unrated
    assert ds.item_table.iloc[ds.items.to_index("1")]["category"] == "DVDs"
    assert ds.item_table["category"].nunique() == 28 and "Ciao Caf?" in set(ds.item_table["category"])
    assert any("652 exact duplicate" in n for n in ds.notes)


@pytest.mark.realdata
def test_ciao_recdiff_counts(real_ciao_recdiff: Dataset) -> None:
    ds = real_ciao_recdiff
    assert (ds.n_users, ds.n_items) == (1925, 15_053)
    assert list(ds.users.external_ids) == [str(i) for i in range(1925)]
    assert list(ds.items.external_ids) == [str(i) for i in range(15_053)]
    sizes = ds.interactions["split"].value_counts().to_dict()
    assert sizes == {SPLIT_TRAIN: 23_223, SPLIT_VALID: 3317, SPLIT_TEST: 6635}
    assert len(ds.social) == 65_084 and ds.summary()["social_edges"] == 32_542 and not ds.social_directed
    assert ds.item_table["category"].notna().all() and ds.item_table["category"].iloc[0] == "0"


@pytest.mark.realdata
def test_amazon_games_counts_and_split(real_amazon_games: Dataset, real_data: Path) -> None:
    ds = real_amazon_games
    assert (ds.n_users, ds.n_items) == (50_546, 16_859)
    inter = ds.interactions
    sizes = inter["split"].value_counts().to_dict()
    assert sizes[SPLIT_VALID] == sizes[SPLIT_TEST] == 50_546 and len(inter) == 440_264
    assert title_of(ds, "0") == "Fire Emblem: The Sacred Stones"
    user0 = inter[inter["user"] == ds.users.to_index("0")]
    assert user0["timestamp"].tolist() == list(range(15))
    assert ds.items.to_external(user0["item"][user0["split"] == SPLIT_VALID].to_numpy()).tolist() == ["13"]
    assert ds.items.to_external(user0["item"][user0["split"] == SPLIT_TEST].to_numpy()).tolist() == ["14"]
    last = inter.groupby("user")["timestamp"].idxmax()
    assert (inter.loc[last, "split"] == SPLIT_TEST).all()
    candidates = load_llmrank_candidates(real_data)
    assert len(candidates) == 200 and {len(c) for c in candidates.values()} == {100}
    assert next(iter(candidates)) == "40610" and set(candidates) <= set(ds.users.external_ids)


# ------------------------------------------------------------------------- small bad inputs


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding=encoding)
    return path


def movielens_dir(root: Path, data: str = "1\t1\t5\t881250949\n2\t2\t3\t881250950\n") -> Path:
    folder = root / "movielens-100k"
    write(folder / "u.genre", "unknown|0\nAction|1\nComedy|2\n\n")
    write(folder / "u.item", "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|1\n"
          "2|Café (1990)|01-Jan-1990||http://y|0|1|1\n", encoding="latin-1")
    write(folder / "u.user", "1|24|M|technician|85711\n2|53|F|other|94043\n")
    write(folder / "u.data", data)
    return root


def test_movielens_small_reads_genres_and_latin1(tmp_path: Path) -> None:
    ds = load_movielens_100k(movielens_dir(tmp_path))
    assert counts(ds) == (2, 2, 2, 0)
    assert ds.item_table["genres"].tolist() == [("Comedy",), ("Action", "Comedy")]
    assert ds.item_table["category"].tolist() == ["Comedy", "Action"] and title_of(ds, "2") == "Café (1990)"


def test_movielens_truncated_row(tmp_path: Path) -> None:
    movielens_dir(tmp_path, "1\t1\t5\t881250949\n2\t2\t3\n")
    with pytest.raises(DataError) as exc:
        load_movielens_100k(tmp_path)
    assert_error(exc, "u.data", 2, None)
    assert "truncated" in str(exc.value)
    with pytest.warns(BadRowsWarning, match="u.data: skipped 1 bad row"):
        ds = load_movielens_100k(tmp_path, skip_bad_rows=True)
    assert len(ds.interactions) == 1


def test_movielens_text_in_rating_and_out_of_range(tmp_path: Path) -> None:
    movielens_dir(tmp_path, "1\t1\tgood\t881250949\n")
    with pytest.raises(DataError) as exc:
        load_movielens_100k(tmp_path)
    assert_error(exc, "u.data", 1, "rating")
    movielens_dir(tmp_path, "1\t1\t5\t881250949\n2\t2\t9\t881250949\n")
    with pytest.raises(DataError) as exc:
        load_movielens_100k(tmp_path)
    assert_error(exc, "u.data", 2, "value")


def test_movielens_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="movielens-100k.*not found.*SOCIALREC_DATA"):
        load_movielens_100k(tmp_path)


def lastfm_dir(root: Path, plays: str = "2\t1\t10\n2\t2\t5\n3\t1\t7\n", friends: str = "2\t3\n3\t2\n") -> Path:
    folder = root / "lastfm-hetrec2011"
    write(folder / "artists.dat",
          "id\tname\turl\tpictureURL\n1\tMALICE MIZER\thttp://a\thttp://p\n2\tBjörk\thttp://b\t\n")
    write(folder / "tags.dat", "tagID\ttagValue\n1\tmetal\n2\tfußball\n", encoding="latin-1")
    write(folder / "user_taggedartists.dat", "userID\tartistID\ttagID\tday\tmonth\tyear\n"
          "2\t1\t1\t1\t4\t2009\n3\t1\t2\t1\t4\t2009\n2\t1\t2\t1\t4\t2009\n2\t99\t1\t1\t4\t2009\n")
    write(folder / "user_artists.dat", "userID\tartistID\tweight\n" + plays)
    write(folder / "user_friends.dat", "userID\tfriendID\n" + friends)
    return root


def test_lastfm_small_tags_and_friends(tmp_path: Path) -> None:
    ds = load_lastfm(lastfm_dir(tmp_path))
    assert counts(ds) == (2, 2, 3, 1)
    assert ds.item_table["tags"].tolist() == [("fußball", "metal"), ()]
    assert ds.item_table["category"].tolist() == ["fußball", None]
    assert any("1 artist(s) missing" in n for n in ds.notes)
    assert set(ds.texts["field"]) == {"title", "tag"}
    # Every assignment on a listed artist, with its tagger (the one on artist 99 is not listed).
    got = ds.tag_assignments.assign(user=ds.users.to_external(ds.tag_assignments["user"].to_numpy()),
                                    item=ds.items.to_external(ds.tag_assignments["item"].to_numpy()))
    assert sorted(map(tuple, got[["user", "item", "tag"]].to_numpy().tolist())) == [
        ("2", "1", "fußball"), ("2", "1", "metal"), ("3", "1", "fußball")]


def test_lastfm_text_in_weight(tmp_path: Path) -> None:
    lastfm_dir(tmp_path, plays="2\t1\t10\n2\t2\tmany\n3\t1\t7\n")
    with pytest.raises(DataError) as exc:
        load_lastfm(tmp_path)
    assert_error(exc, "user_artists.dat", 3, "weight")
    with pytest.warns(BadRowsWarning):
        assert len(load_lastfm(tmp_path, skip_bad_rows=True).interactions) == 2


def test_lastfm_friend_unknown_user(tmp_path: Path) -> None:
    lastfm_dir(tmp_path, friends="2\t3\n3\t2\n2\t77\n")
    with pytest.raises(DataError) as exc:
        load_lastfm(tmp_path)
    assert_error(exc, "user_friends.dat", 4, "target")


def recbole_dir(root: Path, *, inter: str | None = None, net: str | None = None, item: str | None = None) -> Path:
    folder = root / "mine"
    write(folder / "mine.inter", inter if inter is not None else
          "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
          "u1\ti1\t4\t100\nu1\ti2\t5\t200\nu2\ti1\t3\t300\nu3\ti2\t1\t400\n")
    write(folder / "mine.net", net if net is not None else
          "source_id:token\ttarget_id:token\nu1\tu2\nu2\tu1\nu3\tu1\nu1\tu3\n")
    write(folder / "mine.item", item if item is not None else
          "item_id:token\tname:token_seq\tgenre:token_seq\ni1\tTwo  Words\ta b\n")
    return folder


def test_recbole_small(tmp_path: Path) -> None:
    ds = load_recbole(recbole_dir(tmp_path))
    assert ds.name == "mine" and counts(ds) == (3, 2, 4, 2) and not ds.social_directed
    assert ds.interactions["value"].tolist() == [4, 5, 3, 1]
    assert ds.interactions["timestamp"].tolist() == [100, 200, 300, 400]
    assert (ds.interactions["kind"] == "rating").all() and (ds.social["kind"] == "friend").all()
    assert ds.item_table.iloc[0][["title", "name", "genre"]].tolist() == ["Two  Words", ("Two", "Words"), ("a", "b")]
    assert ds.texts["text"].tolist() == ["Two  Words"]


def test_recbole_one_way_edges_are_directed(tmp_path: Path) -> None:
    ds = load_recbole(recbole_dir(tmp_path, net="source_id:token\ttarget_id:token\nu1\tu2\nu2\tu1\nu3\tu1\n"))
    assert ds.social_directed and len(ds.social) == 3 and (ds.social["kind"] == "follow").all()


def test_recbole_edge_to_unknown_user(tmp_path: Path) -> None:
    folder = recbole_dir(tmp_path, net="source_id:token\ttarget_id:token\nu1\tu2\nu2\tghost\nu2\tu1\n")
    with pytest.raises(DataError) as exc:
        load_recbole(folder)
    assert_error(exc, "mine.net", 3, "target")
    assert "ghost" in str(exc.value)
    with pytest.warns(BadRowsWarning, match="mine.net: skipped 1 edge"):
        ds = load_recbole(folder, skip_bad_rows=True)
    assert len(ds.social) == 2


def test_recbole_text_in_float_field(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu2\ti1\tfour\n"
    folder = recbole_dir(tmp_path, inter=inter, net="source_id:token\ttarget_id:token\nu1\tu2\n")
    with pytest.raises(DataError) as exc:
        load_recbole(folder)
    assert_error(exc, "mine.inter", 3, "rating")
    with pytest.warns(BadRowsWarning) as record:  # u2's row, then the edge to u2, who is now unknown
        ds = load_recbole(folder, skip_bad_rows=True)
    assert len(record) == 2 and counts(ds) == (1, 1, 1, 0)


def test_recbole_truncated_row_and_skip(tmp_path: Path) -> None:
    inter = "user_id:token\titem_id:token\trating:float\nu1\ti1\t4\nu2\ti1\nu2\ti2\t5\n"
    folder = recbole_dir(tmp_path, inter=inter, net="source_id:token\ttarget_id:token\nu1\tu2\n")
    with pytest.raises(DataError) as exc:
        load_recbole(folder)
    assert_error(exc, "mine.inter", 3, None)
    with pytest.warns(BadRowsWarning, match="line.s. 3"):
        assert len(load_recbole(folder, skip_bad_rows=True).interactions) == 2


def test_recbole_empty_file_missing_field_untyped_header(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_recbole(recbole_dir(tmp_path, inter=""))
    assert_error(exc, "mine.inter", None, None)
    assert "empty" in str(exc.value)
    with pytest.raises(DataError) as exc:
        load_recbole(recbole_dir(tmp_path, inter="user_id:token\tthing:token\nu1\tx\n"))
    assert_error(exc, "mine.inter", 1, "item_id")
    with pytest.raises(DataError) as exc:
        load_recbole(recbole_dir(tmp_path, inter="user_id\titem_id:token\nu1\tx\n"))
    assert_error(exc, "mine.inter", 1, "user_id")


def tang_dir(root: Path, ratings: list[list[float]], trust: list[list[int]]) -> Path:
    folder = root / "tang"
    folder.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(folder / "rating.mat", {"rating": np.asarray(ratings, dtype=np.int32)})
    scipy.io.savemat(folder / "trustnetwork.mat", {"trustnetwork": np.asarray(trust, dtype=np.uint16)})
    write(folder / "category.txt", "1 DVDs\r\n2 Books\r\n10 Ciao Caf?\r\n")
    return folder


RATINGS = [[1, 5, 1, 4, 1], [1, 6, 2, 5, 2], [2, 5, 1, 3, 1], [2, 6, 10, 3, 1], [3, 6, 10, 2, 1]]


def test_tang_small(tmp_path: Path) -> None:
    ds = load_tang(tang_dir(tmp_path, RATINGS, [[1, 2], [2, 4]]), name="mini")
    assert counts(ds) == (4, 2, 5, 2) and ds.social_directed
    assert list(ds.users.external_ids) == ["1", "2", "3", "4"]  # 4 only trusts: kept
    assert ds.item_table["category"].tolist() == ["DVDs", "Ciao Caf?"]  # item 6: 10 twice, 2 once


def test_tang_duplicates_warn_unless_expected(tmp_path: Path) -> None:
    folder = tang_dir(tmp_path, RATINGS + [RATINGS[0]], [[1, 2]])
    with pytest.warns(DuplicateRowsWarning, match="dropped 1 exact duplicate row.*line 6"):
        ds = load_tang(folder)
    assert len(ds.interactions) == 5
    assert len(load_tang(folder, expected_duplicates=1).interactions) == 5  # no warning


def test_tang_bad_rating_and_category(tmp_path: Path) -> None:
    folder = tang_dir(tmp_path, RATINGS + [[3, 7, 1, 9, 1]], [[1, 2]])
    with pytest.raises(DataError) as exc:
        load_tang(folder)
    assert_error(exc, "rating.mat", 6, "rating")
    with pytest.warns(BadRowsWarning):
        assert len(load_tang(folder, skip_bad_rows=True).interactions) == 5
    folder = tang_dir(tmp_path, RATINGS + [[3, 7, 4, 3, 1]], [[1, 2]])
    with pytest.raises(DataError) as exc:
        load_tang(folder)
    assert_error(exc, "rating.mat", 6, "category")


def test_tang_missing_variable(tmp_path: Path) -> None:
    folder = tang_dir(tmp_path, RATINGS, [[1, 2]])
    scipy.io.savemat(folder / "rating.mat", {"a": np.ones((2, 5)), "b": np.ones((2, 5))})
    with pytest.raises(DataError, match="no matrix named 'rating'") as exc:
        load_tang(folder)
    assert_error(exc, "rating.mat", None, "rating")


def recdiff_dir(root: Path, val: str = "row\tcol\tvalue\n1\t1\t1\n") -> Path:
    folder = root / "ciao" / "recdiff-split"
    write(folder / "train.tsv", "row\tcol\tvalue\n0\t0\t1\n1\t0\t1\n")
    write(folder / "val.tsv", val)
    write(folder / "test.tsv", "row\tcol\tvalue\n0\t2\t1\n")
    write(folder / "trust.tsv", "row\tcol\tvalue\n0\t3\t1\n3\t0\t1\n")
    write(folder / "category.tsv", "row\tcol\tvalue\n0\t1\t1\n1\t0\t1\n2\t4\t1\n2\t0\t1\n3\t0\t1\n")
    return root


def test_recdiff_small_keeps_unseen_ids(tmp_path: Path) -> None:
    ds = load_ciao_recdiff(recdiff_dir(tmp_path))
    assert (ds.n_users, ds.n_items) == (4, 4)  # user 2 and item 3 appear in no interaction
    assert ds.interactions["split"].tolist() == [SPLIT_TRAIN, SPLIT_TRAIN, SPLIT_VALID, SPLIT_TEST]
    assert ds.item_table["category"].tolist() == ["1", "0", "4", "0"] and not ds.social_directed


def test_recdiff_truncated_and_bad_header(tmp_path: Path) -> None:
    recdiff_dir(tmp_path, val="row\tcol\tvalue\n1\t1\t1\n2\t1\n")
    with pytest.raises(DataError) as exc:
        load_ciao_recdiff(tmp_path)
    assert_error(exc, "val.tsv", 3, None)
    recdiff_dir(tmp_path, val="user\titem\tvalue\n1\t1\t1\n")
    with pytest.raises(DataError) as exc:
        load_ciao_recdiff(tmp_path)
    assert_error(exc, "val.tsv", 1, None)


def amazon_dir(root: Path, valid_target: str = "2") -> Path:
    folder = root / "amazon-games"
    head = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    write(folder / "Games.item", "item_id:token\ttitle:token_seq\n0\tA\n1\tB\n2\tC\n3\tD\n")
    write(folder / "Games-6k.test.inter", head + "0\t0 1 2\t3\n1\t3 2\t0\n")
    write(folder / "Games-6k.valid.inter", head + f"0\t0 1\t{valid_target}\n1\t3\t2\n")
    write(folder / "Games.random", "0\t1 2\n1\t0 1\n")
    return root


def test_amazon_small(tmp_path: Path) -> None:
    ds = load_amazon_games(amazon_dir(tmp_path))
    assert counts(ds) == (2, 4, 7, 0)
    assert ds.interactions["split"].tolist() == [0, 0, 1, 2, 0, 1, 2]
    assert ds.interactions["timestamp"].tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert load_llmrank_candidates(tmp_path) == {"0": ["1", "2"], "1": ["0", "1"]}


def test_amazon_valid_target_mismatch(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        load_amazon_games(amazon_dir(tmp_path, valid_target="1"))
    assert_error(exc, "Games-6k.valid.inter", 2, "item_id")

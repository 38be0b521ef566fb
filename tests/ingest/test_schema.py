"""The dataset type: id mapping, duplicates, social edge repair and the errors it raises."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError, UnknownIdError
from socialrec.ingest.idmap import IdMap
from socialrec.ingest.schema import DuplicateRowsWarning, SocialEdgeWarning, build_dataset


def test_idmap_round_trip_and_unknowns():
    m = IdMap(["a", 7, "c"], kind="user")
    assert m.to_index("7") == 1 and m.to_index(7) == 1
    np.testing.assert_array_equal(m.to_index(["c", "a"]), [2, 0])
    assert list(m.to_external([2, 0])) == ["c", "a"]
    with pytest.raises(UnknownIdError, match="1 unknown user id.*'zz'"):
        m.to_index(["a", "zz"])
    np.testing.assert_array_equal(m.to_index(["zz", "a"], missing="minus1"), [-1, 0])


def test_exact_duplicates_are_dropped_and_counted():
    df = pd.DataFrame({"user": ["a", "a", "b"], "item": ["x", "x", "x"]})
    with pytest.warns(DuplicateRowsWarning, match="dropped 1 exact duplicate"):
        ds = build_dataset("d", df)
    assert len(ds.interactions) == 2


def test_catalog_items_without_interactions_are_kept():
    items = pd.DataFrame({"id": ["x", "y", "z"], "title": ["X", "Y", "Z"]})
    ds = build_dataset("d", pd.DataFrame({"user": ["a"], "item": ["y"]}), items=items)
    assert ds.n_items == 3 and ds.items.to_index("y") == 1
    assert ds.item_titles([2, 1]) == ["Z", "Y"]


def test_ratings_out_of_range_name_the_line():
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"], "value": [3, 9], "_line": [2, 3], "_path": "r.csv"})
    with pytest.raises(DataError, match=r"r\.csv, line 3, field 'value': rating 9 is outside"):
        build_dataset("d", df, rating_range=(1, 5))


def test_text_in_a_numeric_column_names_the_line():
    df = pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"], "value": ["3", "five"], "_line": [2, 3], "_path": "r.csv"})
    with pytest.raises(DataError, match=r"line 3, field 'value': 'five' is not a number"):
        build_dataset("d", df)


def test_edges_to_unknown_users_are_an_error_or_dropped_on_request():
    inter = pd.DataFrame({"user": ["a", "b"], "item": ["x", "x"]})
    social = pd.DataFrame({"source": ["a", "a"], "target": ["b", "ghost"], "_line": [2, 3], "_path": "f.net"})
    with pytest.raises(DataError, match=r"f\.net, line 3, field 'target': edge names unknown user 'ghost'"):
        build_dataset("d", inter, social=social, social_directed=True)
    with pytest.warns(SocialEdgeWarning, match="dropped 1 social edge"):
        ds = build_dataset("d", inter, social=social, social_directed=True, unknown_social="drop")
    assert len(ds.social) == 1


def test_self_loops_and_duplicate_edges_are_counted():
    inter = pd.DataFrame({"user": ["a", "b", "c"], "item": ["x", "x", "x"]})
    social = pd.DataFrame({"source": ["a", "a", "b", "c"], "target": ["a", "b", "c", "a"]})
    social = pd.concat([social, social.iloc[[1]]])
    with pytest.warns(SocialEdgeWarning) as record:
        ds = build_dataset("d", inter, social=social, social_directed=True)
    messages = " ".join(str(w.message) for w in record)
    assert "1 self-loop" in messages and "1 duplicate social edge" in messages
    assert len(ds.social) == 3


def test_symmetric_social_is_stored_both_ways_and_one_way_rows_are_reported():
    inter = pd.DataFrame({"user": ["a", "b", "c"], "item": ["x", "x", "x"]})
    both = pd.DataFrame({"source": ["a", "b", "b"], "target": ["b", "a", "c"]})  # b->c only one way
    with pytest.warns(SocialEdgeWarning, match="1 of 3 friend edge.s. appear in one direction only"):
        ds = build_dataset("d", inter, social=both, social_directed=False)
    assert ds.summary()["social_edges"] == 2
    adj = ds.social_matrix()
    assert (adj != adj.T).nnz == 0


def test_empty_interactions_and_missing_columns():
    with pytest.raises(DataError, match="no interactions"):
        build_dataset("d", pd.DataFrame({"user": [], "item": []}))
    with pytest.raises(DataError, match=r"lacks column\(s\) \['item'\]"):
        build_dataset("d", pd.DataFrame({"user": ["a"], "product": ["x"]}))


def test_tag_assignments_attach_by_external_id_dropping_unknown_items() -> None:
    from socialrec.ingest.schema import with_tag_assignments

    ds = build_dataset("t", pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i2"]}))
    assert len(ds.tag_assignments) == 0
    tagged = with_tag_assignments(ds, pd.DataFrame({"user": ["u2", "stranger", "u1", "u1"],
                                                    "item": ["i1", "i2", "nope", "i2"],
                                                    "tag": ["rock", " jazz ", "pop", ""]}))
    assert tagged.tag_assignments.to_dict("list") == {"user": [1, -1], "item": [0, 1], "tag": ["rock", "jazz"]}
    assert tagged.summary()["tag_assignments"] == 2 and len(ds.tag_assignments) == 0  # the original is unchanged
    with pytest.raises(DataError, match="tag assignments table lacks column"):
        with_tag_assignments(ds, pd.DataFrame({"item": ["i1"]}))


def test_interaction_values_attach_by_external_id_to_every_row_of_the_pair() -> None:
    from socialrec.ingest.schema import with_interaction_values

    ds = build_dataset("v", pd.DataFrame({"user": ["u1", "u1", "u2", "u1"], "item": ["i1", "i2", "i1", "i1"],
                                          "timestamp": [1, 2, 3, 4]}))
    valued = with_interaction_values(ds, pd.DataFrame({"user": ["u1", "u2", "u2", "stranger"],
                                                       "item": ["i1", "i2", "i1", "i1"], "value": [30, 7, 5, 9]}))
    # u1-i1 has two rows (both 30); u1-i2 is not in the table (NaN); u2-i2 is not an interaction.
    np.testing.assert_array_equal(valued.interactions["value"].to_numpy(), [30, np.nan, 5, 30])
    assert ds.interactions["value"].isna().all()  # the original is unchanged
    with pytest.raises(DataError, match="appear more than once, first user 'u1' and item 'i1'"):
        with_interaction_values(ds, pd.DataFrame({"user": ["u1", "u1"], "item": ["i1", "i1"], "value": [1, 2]}))
    with pytest.raises(DataError, match="row 1 has value 'many'"):
        with_interaction_values(ds, pd.DataFrame({"user": ["u1", "u2"], "item": ["i1", "i1"], "value": ["3", "many"]}))
    with pytest.raises(DataError, match="lacks column"):
        with_interaction_values(ds, pd.DataFrame({"user": ["u1"], "item": ["i1"]}))

"""load_table: the user's own CSV / TSV / Parquet / JSON tables with a column mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from socialrec.errors import DataError, MissingDependencyError
from socialrec.ingest.datasets import tabular
from socialrec.ingest.datasets.tabular import load_table
from socialrec.ingest.read import BadRowsWarning
from socialrec.ingest.schema import DuplicateRowsWarning

MAPPING = {"member": "user", "product": "item", "stars": "value", "when": "timestamp"}
ROWS = [
    {"member": "ann", "product": "p1", "stars": 4, "when": "2021-01-01T00:00:00Z"},
    {"member": "ann", "product": "p2", "stars": 5, "when": "2021-01-02"},
    {"member": "bob", "product": "p1", "stars": 3, "when": 1609459200},
]
DAY = 86_400.0
JAN1 = 1_609_459_200.0


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_text(sep: str = ",", extra: str = "") -> str:
    lines = [sep.join(["member", "product", "stars", "when", "note"])]
    lines += [sep.join([str(r["member"]), str(r["product"]), str(r["stars"]), str(r["when"]), "x"]) for r in ROWS]
    return "\n".join(lines) + "\n" + extra


def check_rows(ds) -> None:  # type: ignore[no-untyped-def]
    assert list(ds.users.external_ids) == ["ann", "bob"] and list(ds.items.external_ids) == ["p1", "p2"]
    assert ds.interactions["value"].tolist() == [4, 5, 3]
    assert ds.interactions["timestamp"].tolist() == [JAN1, JAN1 + DAY, JAN1]


@pytest.mark.parametrize("suffix,sep", [(".csv", ","), (".tsv", "\t")])
def test_delimited_with_mapping_and_iso_times(tmp_path: Path, suffix: str, sep: str) -> None:
    ds = load_table(write(tmp_path / f"log{suffix}", csv_text(sep)), columns=MAPPING, rating_range=(1, 5))
    assert ds.name == "log"
    check_rows(ds)


def test_quoted_csv_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "q.csv", '"user","item","value"\n"a","say ""hi""","1"\n')
    ds = load_table(path)
    assert list(ds.items.external_ids) == ['say "hi"'] and ds.interactions["value"].tolist() == [1]


def test_jsonl_and_json_array_and_concatenated(tmp_path: Path) -> None:
    check_rows(load_table(write(tmp_path / "a.jsonl", "\n".join(json.dumps(r) for r in ROWS)), columns=MAPPING))
    check_rows(load_table(write(tmp_path / "b.json", json.dumps(ROWS, indent=2)), columns=MAPPING))
    check_rows(load_table(write(tmp_path / "c.json", "".join(json.dumps(r, indent=2) for r in ROWS)), columns=MAPPING))


def test_unparseable_timestamp_names_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", csv_text(extra="cy,p3,4,last tuesday,x\n"))
    with pytest.raises(DataError) as exc:
        load_table(path, columns=MAPPING)
    msg = str(exc.value)
    assert "t.csv" in msg and "line 5" in msg and "field 'timestamp'" in msg and "last tuesday" in msg
    with pytest.warns(BadRowsWarning, match="line.s. 5"):
        check_rows(load_table(path, columns=MAPPING, skip_bad_rows=True))


def test_text_in_value_jsonl_names_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in ROWS] + [json.dumps({"member": "cy", "product": "p1", "stars": "lots"})]
    path = write(tmp_path / "v.jsonl", "\n".join(lines))
    with pytest.raises(DataError) as exc:
        load_table(path, columns=MAPPING)
    assert "v.jsonl" in str(exc.value) and "line 4" in str(exc.value) and "field 'value'" in str(exc.value)


def test_truncated_csv_row(tmp_path: Path) -> None:
    path = write(tmp_path / "t.csv", csv_text(extra="cy,p3\n"))
    with pytest.raises(DataError) as exc:
        load_table(path, columns=MAPPING)
    assert "t.csv" in str(exc.value) and "line 5" in str(exc.value)


def test_bad_json_record(tmp_path: Path) -> None:
    path = write(tmp_path / "b.jsonl", json.dumps(ROWS[0]) + '\n{"member": "x", \n' + json.dumps(ROWS[2]) + "\n")
    with pytest.raises(DataError) as exc:
        load_table(path, columns=MAPPING)
    assert "b.jsonl" in str(exc.value) and "line 2" in str(exc.value) and "not valid JSON" in str(exc.value)
    with pytest.warns(BadRowsWarning):
        assert len(load_table(path, columns=MAPPING, skip_bad_rows=True).interactions) == 2


def test_missing_column_and_empty_file(tmp_path: Path) -> None:
    path = write(tmp_path / "m.csv", csv_text())
    with pytest.raises(DataError) as exc:
        load_table(path, columns={"member": "user", "sku": "item"})
    assert "m.csv" in str(exc.value) and "line 1" in str(exc.value) and "field 'sku'" in str(exc.value)
    with pytest.raises(DataError, match="no 'item' column.*columns=|no 'item' column") as exc:
        load_table(path, columns={"member": "user"})
    assert "field 'item'" in str(exc.value)
    with pytest.raises(DataError, match="empty"):
        load_table(write(tmp_path / "e.csv", ""))
    with pytest.raises(DataError, match="no data rows"):
        load_table(write(tmp_path / "h.csv", "user,item\n"))
    with pytest.raises(DataError, match="unsupported file type"):
        load_table(write(tmp_path / "x.xlsx", "?"))


def test_social_and_items_tables(tmp_path: Path) -> None:
    inter = write(tmp_path / "i.csv", csv_text())
    social = write(tmp_path / "s.tsv", "from\tto\nann\tbob\nbob\tann\nann\tghost\n")
    items = write(tmp_path / "items.csv", "sku,title,category\np2,Second,b\np1,First,a\np9,Unsold,c\n")
    kwargs = dict(columns=MAPPING, social=social, social_columns={"from": "source", "to": "target"},
                  items=items, items_columns={"sku": "id"})
    with pytest.raises(DataError) as exc:
        load_table(inter, **kwargs)  # type: ignore[arg-type]
    assert "s.tsv" in str(exc.value) and "line 4" in str(exc.value) and "ghost" in str(exc.value)
    with pytest.warns(BadRowsWarning, match="s.tsv: skipped 1 edge"):
        ds = load_table(inter, skip_bad_rows=True, **kwargs)  # type: ignore[arg-type]
    assert list(ds.items.external_ids) == ["p2", "p1", "p9"] and ds.item_titles([2]) == ["Unsold"]
    assert ds.summary()["social_edges"] == 1 and not ds.social_directed


def test_duplicates_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "d.csv", "user,item\na,x\na,x\nb,x\n")
    with pytest.warns(DuplicateRowsWarning, match="d.csv line 3"):
        assert len(load_table(path).interactions) == 2


def test_parquet_needs_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "_has_pyarrow", lambda: False)
    with pytest.raises(MissingDependencyError, match="pyarrow.*socialrec\\[parquet\\]"):
        load_table(write(tmp_path / "x.parquet", ""))


def test_parquet_round_trip(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "p.parquet"
    frame = pd.DataFrame(ROWS).assign(when=pd.to_datetime([JAN1, JAN1 + DAY, JAN1], unit="s"))
    frame.to_parquet(path)
    check_rows(load_table(path, columns=MAPPING))


@pytest.mark.realdata
def test_amazon_fashion_concatenated_json(real_data: Path) -> None:
    """The README's Fashion file is one pretty-printed JSON object after another."""
    path = real_data / "amazon-fashion-reviews" / "AMAZON_FASHION_5.json"
    with pytest.warns(DuplicateRowsWarning, match="dropped 108 exact duplicate"):
        ds = load_table(path, columns={"reviewerID": "user", "asin": "item", "overall": "value",
                                       "unixReviewTime": "timestamp"}, rating_range=(1, 5))
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (406, 31, 3176 - 108)

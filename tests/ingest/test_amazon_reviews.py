"""The Amazon Reviews 2018 loader (a sequence of JSON objects) on a tiny file and on the real one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from socialrec.errors import DataError
from socialrec.ingest.datasets.amazon_reviews import load_amazon_reviews, review_pairs


def _write(path: Path, records: list[dict]) -> Path:
    path.write_text("\n".join(json.dumps(r, indent=2) for r in records))
    return path


def _rec(user: str, item: str, rating: float, text: str, t: int, style: str = "S") -> dict:
    return {"overall": rating, "reviewerID": user, "reviewerName": "Jane Q. Public", "asin": item,
            "reviewText": text, "summary": "Short", "unixReviewTime": t, "style": {"Size:": style}}


def test_tiny_file(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.json", [
        _rec("U1", "A", 5, "Lovely", 100), _rec("U1", "A", 5, "Lovely", 100, style="M"),  # a variant copy
        _rec("U2", "A", 1, "Broke", 200), _rec("U2", "B", 4, "Fine", 300),
    ])
    ds = load_amazon_reviews(path, name="tiny")
    assert ds.n_users == 2 and ds.n_items == 2 and len(ds.interactions) == 3
    assert sorted(ds.interactions["value"].tolist()) == [1.0, 4.0, 5.0]
    assert set(ds.texts["owner"]) == {"item", "user"} and len(ds.texts) == 6
    assert "Short. Lovely" in ds.texts["text"].tolist()
    assert not ds.texts["text"].str.contains("Jane").any()  # reviewer names stay out
    pairs = review_pairs(ds)
    assert len(pairs) == 3
    got = {(ds.users.to_external(int(u)), ds.items.to_external(int(i))) for u, i in zip(pairs["user"], pairs["item"])}
    assert got == {("U1", "A"), ("U2", "A"), ("U2", "B")}


def test_broken_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(_rec("U1", "A", 5, "x", 1)) + "\n{\"overall\": 5,\n")
    with pytest.raises(DataError, match=r"r\.json, line 3: not valid JSON after record 1"):  # where parsing failed
        load_amazon_reviews(path)


def test_missing_field_is_named(tmp_path: Path) -> None:
    rec = _rec("U1", "A", 5, "x", 1)
    del rec["asin"]
    with pytest.raises(DataError, match="asin"):
        load_amazon_reviews(_write(tmp_path / "r.json", [rec]))


@pytest.mark.realdata
def test_real_fashion_counts(real_amazon_fashion) -> None:
    ds = real_amazon_fashion
    assert ds.n_users == 406 and ds.n_items == 31
    assert len(ds.interactions) == 3068  # 3,088 distinct reviews, 20 repeat a pair on the same day
    assert (ds.texts["owner"] == "item").sum() == 3088
    assert ds.interactions["value"].between(1, 5).all()


@pytest.mark.realdata
def test_real_fashion_sentiment_separates_good_from_bad_reviews(real_amazon_fashion) -> None:
    pytest.importorskip("vaderSentiment")
    from socialrec.evaluate.classification import roc_auc
    from socialrec.represent.sentiment import sentiment_scores

    pairs = review_pairs(real_amazon_fashion)
    inter = real_amazon_fashion.interactions
    rating = inter.groupby(["user", "item", "timestamp"])["value"].first()
    pairs["rating"] = rating.reindex(list(zip(pairs["user"], pairs["item"], pairs["timestamp"]))).to_numpy()
    labelled = pairs[pairs["rating"] != 3]
    auc = roc_auc(sentiment_scores(labelled["text"].tolist()), labelled["rating"] >= 4)
    assert auc >= 0.80

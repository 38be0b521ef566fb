"""Item modality vectors attached to a dataset: arrays, .npy and Parquet files, each check naming
the file and field; and the tiktok-multimodal loader against the counts the data README states."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from socialrec.errors import DataError
from socialrec.ingest.features import check_vectors, with_item_features
from socialrec.ingest.schema import Dataset, build_dataset


@pytest.fixture
def ds() -> Dataset:
    inter = pd.DataFrame({"user": ["u1", "u1", "u2"], "item": ["a", "b", "c"]})
    return build_dataset("tiny", inter)


def test_array_in_index_order_float16_cast(ds: Dataset) -> None:
    m = np.arange(6, dtype=np.float16).reshape(3, 2)
    out = with_item_features(ds, "image", m)
    assert out.modalities == ("image",) and out.item_features["image"].dtype == np.float32
    np.testing.assert_array_equal(out.item_features["image"], m.astype(np.float32))
    assert ds.item_features == {}  # the original is unchanged
    assert out.summary()["item_features"] == {"image": 2}


def test_npy_with_ids_fills_missing_items_with_zero_rows(ds: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "audio.npy"
    np.save(path, np.array([[1.0, 2.0], [3.0, 4.0]]))
    out = with_item_features(ds, "audio", path, ids=["c", "a"])
    idx = ds.items.to_index(["a", "b", "c"])
    np.testing.assert_array_equal(out.item_features["audio"][idx], [[3, 4], [0, 0], [1, 2]])


def test_parquet_list_column_and_numeric_columns(ds: Dataset, tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    path = tmp_path / "v.parquet"
    pd.DataFrame({"id": ["b", "a"], "vector": [[1.0, 0.0, 2.0], [0.5, 0.5, 0.5]]}).to_parquet(path)
    out = with_item_features(ds, "text", path)
    np.testing.assert_array_equal(out.item_features["text"][ds.items.to_index("b")], [1, 0, 2])
    wide = tmp_path / "w.parquet"
    pd.DataFrame({"id": ["a", "b", "c"], "d0": [1.0, 2.0, 3.0], "d1": [0.0, 0.0, 1.0]}).to_parquet(wide)
    assert with_item_features(ds, "wide", wide).item_features["wide"].shape == (3, 2)


def test_bad_vectors_are_diagnosed_with_file_and_field(ds: Dataset, tmp_path: Path) -> None:
    path = tmp_path / "bad.npy"
    np.save(path, np.array([[1.0, np.nan], [0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(DataError, match=r"bad\.npy.*field 'vectors'.*NaN or infinite values, first row 0"):
        with_item_features(ds, "image", path)
    with pytest.raises(DataError, match="2 rows of vectors for 3 items"):
        with_item_features(ds, "image", np.ones((2, 4)))
    with pytest.raises(DataError, match="2-D"):
        with_item_features(ds, "image", np.ones(3))
    with pytest.raises(DataError, match="items the dataset lacks, first 'zz'"):
        with_item_features(ds, "image", np.ones((2, 4)), ids=["a", "zz"])
    assert with_item_features(ds, "image", np.ones((2, 4)), ids=["a", "zz"], unknown="drop").n_items == 3
    with pytest.raises(DataError, match="item id 'a' has 2 rows"):
        with_item_features(ds, "image", np.ones((2, 4)), ids=["a", "a"])
    with pytest.raises(DataError, match="does not exist"):
        with_item_features(ds, "image", tmp_path / "missing.npy")
    once = with_item_features(ds, "image", np.ones((3, 4)))
    with pytest.raises(DataError, match="already has modality 'image'"):
        with_item_features(once, "image", np.ones((3, 4)))


def test_check_vectors_names_modality_and_dimension() -> None:
    dims = {"image": 4, "audio": 2}
    assert check_vectors({"image": [1, 2, 3, 4]}, dims)["image"].shape == (1, 4)
    with pytest.raises(DataError, match="modality 'audio' has dimension 3, the model expects 2"):
        check_vectors({"audio": [1, 2, 3]}, dims)
    with pytest.raises(DataError, match="unknown modality 'smell'"):
        check_vectors({"smell": [1]}, dims)


def test_tiktok_multimodal_loader(real_data: Path) -> None:
    if not (real_data / "tiktok-multimodal").is_dir():
        pytest.skip("tiktok-multimodal is absent")
    from socialrec.ingest.datasets import load
    from socialrec.ingest.split import make_split

    ds = load("tiktok-multimodal", real_data)
    assert (ds.n_users, ds.n_items) == (9308, 6710)
    assert make_split(ds, "fixed").sizes() == {"train": 59541, "valid": 3051, "test": 6130}
    assert ds.modalities == ("image", "audio")
    for m in ds.item_features.values():
        assert m.shape == (6710, 128) and m.dtype == np.float32 and np.isfinite(m).all()
    raw = np.load(real_data / "tiktok-multimodal" / "image_feat.npy")
    np.testing.assert_array_equal(ds.item_features["image"][ds.items.to_index("17")], raw[17].astype(np.float32))

"""Labelled review corpora for training and testing sentiment models (texts with a label, no users).

- ``reviews-en-clothing/womens_clothing_ecommerce_reviews.csv.gz`` (Women's E-Commerce Clothing
  Reviews): the text is ``Title. Review Text`` (the title alone when there is no body; rows with
  neither are dropped); 4-5 stars are positive (label 1), 1-2 stars negative (0), 3 stars dropped.
- ``reviews-zh/`` (SophonPlus ChineseNlpCorpus): ``online_shopping_10_cats.csv.gz``,
  ``waimai_10k.csv.gz`` and ``ChnSentiCorp_htl_all.csv.gz``, each with ``label`` (1 positive, 0
  negative) and ``review``; a leading byte-order mark is stripped, empty reviews are dropped.

Both return a frame with ``text``, ``label`` (int 0/1) and ``source`` (the file, or for English the
star rating as "stars=N"). A text that occurs more than once is kept once (with its label when all
copies agree, dropped when they disagree), so no text can be both in training and in test.

`split_labelled` gives the fixed train / valid / test split of such a frame for a seed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from socialrec.errors import DataError

EN_FOLDER = "reviews-en-clothing"
EN_FILE = "womens_clothing_ecommerce_reviews.csv.gz"
ZH_FOLDER = "reviews-zh"
ZH_FILES = ("online_shopping_10_cats.csv.gz", "waimai_10k.csv.gz", "ChnSentiCorp_htl_all.csv.gz")


def _root(root: str | os.PathLike[str] | None) -> Path:
    from socialrec.ingest.datasets import data_dir

    return data_dir(root)


def _read_csv(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError("file not found", path=str(path),
                        fix="Point --data or $SOCIALREC_DATA at the shared data directory (see its README.md)")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read the CSV ({exc})", path=str(path)) from None
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"missing column(s) {missing}; found {list(frame.columns)}", path=str(path),
                        fix="Use the published file unchanged")
    return frame


def _labels(values: pd.Series, path: Path, column: str, allowed: tuple[str, ...]) -> np.ndarray:
    bad = ~values.isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"expected one of {list(allowed)}, got {values.iloc[row]!r}", path=str(path),
                        line=row + 2, field=column)  # +2: the header is line 1
    return values.astype(int).to_numpy()


def _dedupe(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per distinct text; texts whose copies disagree on the label are dropped."""
    agree = frame.groupby("text")["label"].transform("nunique") == 1
    return frame[agree].drop_duplicates("text", keep="first").reset_index(drop=True)


def load_english_reviews(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The clothing reviews with 1, 2, 4 or 5 stars as (text, label, source); see the module docstring."""
    path = _root(root) / EN_FOLDER / EN_FILE
    raw = _read_csv(path, ("Title", "Review Text", "Rating"))
    stars = _labels(raw["Rating"].str.strip(), path, "Rating", ("1", "2", "3", "4", "5"))
    title = raw["Title"].str.strip()
    body = raw["Review Text"].str.strip()
    text = np.where((title != "") & (body != ""), title + ". " + body, title + body)
    frame = pd.DataFrame({"text": text, "label": (stars >= 4).astype(int),
                          "source": [f"stars={s}" for s in stars]})
    frame = frame[(stars != 3) & (frame["text"] != "")]
    return _dedupe(frame)


def load_chinese_reviews(root: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The three Chinese review corpora as (text, label, source); see the module docstring."""
    parts = []
    for name in ZH_FILES:
        path = _root(root) / ZH_FOLDER / name
        raw = _read_csv(path, ("label", "review"))
        labels = _labels(raw["label"].str.strip(), path, "label", ("0", "1"))
        text = raw["review"].str.replace("\ufeff", "", regex=False).str.strip()
        part = pd.DataFrame({"text": text, "label": labels, "source": name.split(".")[0]})
        parts.append(part[part["text"] != ""])
    return _dedupe(pd.concat(parts, ignore_index=True))


@dataclass(frozen=True)
class LabelledSplit:
    """Train / valid / test parts of a labelled frame (each with text, label, source)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "valid": len(self.valid), "test": len(self.test)}


def split_labelled(frame: pd.DataFrame, *, seed: int = 0, valid: float = 0.1, test: float = 0.2) -> LabelledSplit:
    """A random split, stratified by label, fixed by ``seed``: a ``test`` share, a ``valid`` share
    and the rest for training."""
    if not (0 < valid < 1 and 0 < test < 1 and valid + test < 1):
        raise ValueError(f"valid and test must be shares in (0, 1) summing below 1, got valid={valid}, test={test}")
    rng = np.random.default_rng(seed)
    part = np.empty(len(frame), dtype=np.int8)
    labels = frame["label"].to_numpy()
    for value in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == value))
        n_test, n_valid = int(round(test * len(idx))), int(round(valid * len(idx)))
        part[idx[:n_test]] = 2
        part[idx[n_test:n_test + n_valid]] = 1
        part[idx[n_test + n_valid:]] = 0
    pick = [frame[part == p].reset_index(drop=True) for p in (0, 1, 2)]
    return LabelledSplit(train=pick[0], valid=pick[1], test=pick[2])

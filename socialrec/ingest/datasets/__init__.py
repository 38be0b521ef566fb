"""Loaders, one per public format, each taking a data directory.

`load(name)` resolves a dataset name to its loader through the explicit table `LOADERS`
(no name-guessing registry). Names with a colon take a directory: ``recbole:/path/to/dir``,
``tang:/path/to/dir``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from socialrec.errors import DataError
from socialrec.ingest.schema import Dataset

DEFAULT_DATA_DIR = "../shared/data"


def data_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``path``, else ``$SOCIALREC_DATA``, else ``../shared/data``."""
    return Path(path if path is not None else os.environ.get("SOCIALREC_DATA", DEFAULT_DATA_DIR))


def _loaders() -> dict[str, Callable[..., Dataset]]:
    # Imported here so that importing socialrec.ingest.datasets does no work.
    from socialrec.ingest.datasets import (amazon, amazon_reviews, lastfm, movielens, recbole, recdiff, synthetic, tang,
                                          tiktok, weibo)

    return {
        "movielens-100k": movielens.load_movielens_100k,
        "lastfm": lastfm.load_lastfm,
        "lastfm-recbole": recbole.load_lastfm_recbole,
        "ciao": tang.load_ciao,
        "ciao-recdiff": recdiff.load_ciao_recdiff,
        "amazon-games": amazon.load_amazon_games,
        "amazon-fashion-reviews": amazon_reviews.load_amazon_fashion,
        "weibo-ced": weibo.load_weibo_ced,
        "tiktok-multimodal": tiktok.load_tiktok_multimodal,
        "synthetic": synthetic.load_synthetic,
    }


def available_names() -> list[str]:
    return list(_loaders())


GENERIC_FORMATS = ("recbole", "tang")


def check_name(name: str) -> None:
    """Refuse a dataset name `load` does not know, before any work (a server checks at start-up)."""
    if ":" in name:
        fmt = name.partition(":")[0]
        if fmt not in GENERIC_FORMATS:
            raise DataError(f"unknown dataset format {fmt!r} in {name!r}",
                            fix=f"Use one of {list(GENERIC_FORMATS)} followed by ':DIR'")
    elif name not in _loaders():
        raise DataError(f"unknown dataset {name!r}",
                        fix=f"Use one of {sorted(_loaders())}, or recbole:DIR / tang:DIR for your own files")


def load(name: str, data: str | os.PathLike[str] | None = None, **kwargs: Any) -> Dataset:
    """Load a dataset by name (see `available_names`) or ``recbole:DIR`` / ``tang:DIR``."""
    check_name(name)
    if ":" in name:
        fmt, _, directory = name.partition(":")
        from socialrec.ingest.datasets import recbole, tang

        generic = {"recbole": recbole.load_recbole, "tang": tang.load_tang}
        return generic[fmt](directory, **kwargs)
    loaders = _loaders()
    if name == "synthetic":
        return loaders[name](**kwargs)
    return loaders[name](data_dir(data), **kwargs)

"""Loaders, one per public format, each taking a data directory.

`load(name)` resolves a dataset name to its loader through the explicit table `_loaders`
(no name-guessing registry). Names with a colon take a directory: ``recbole:/path/to/dir``,
``tang:/path/to/dir``; a generated dataset takes its parameters after the colon instead:
``synthetic:n_users=20000,n_items=300000,interactions_per_user=50,seed=0`` (`parse_name`; an
unknown key is an error that lists the known ones).
"""

from __future__ import annotations

import inspect
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
# Generated datasets: their loaders take keyword parameters, no directory; ``NAME:key=value,...``.
GENERATED = ("synthetic",)


def _parameters(name: str) -> dict[str, Any]:
    """The keyword parameters of a generated dataset's loader, with their defaults."""
    signature = inspect.signature(_loaders()[name])
    return {p.name: p.default for p in signature.parameters.values() if p.kind is p.KEYWORD_ONLY}


def _parse_value(text: str, default: Any, where: str) -> Any:
    """``text`` read as the type of ``default`` (int, float or bool)."""
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false", "1", "0"):
                raise ValueError(text)
            return text.lower() in ("true", "1")
        if isinstance(default, int):
            return int(text)
        return float(text)
    except ValueError:
        kind = "true/false" if isinstance(default, bool) else ("integer" if isinstance(default, int) else "number")
        raise DataError(f"{where}: {text!r} is not a valid {kind}",
                        fix=f"Give a value of that kind, e.g. {default!r}") from None


def parse_name(name: str) -> tuple[str, dict[str, Any]]:
    """Split ``NAME:key=value,...`` of a generated dataset into the name and its keyword
    arguments, typed like the loader's defaults; any other name comes back with no arguments.
    Unknown keys, repeated keys and malformed pairs are errors naming the known keys."""
    base, sep, rest = name.partition(":")
    if base not in GENERATED:
        return name, {}
    known = _parameters(base)
    params: dict[str, Any] = {}
    for pair in (p.strip() for p in rest.split(",")) if sep else ():
        if not pair:
            continue
        key, eq, value = (part.strip() for part in pair.partition("="))
        if not eq or not key or not value:
            raise DataError(f"malformed parameter {pair!r} in dataset name {name!r}",
                            fix=f"Write {base}:key=value,key=value with keys among {sorted(known)}")
        if key not in known:
            raise DataError(f"unknown parameter {key!r} of dataset {base!r} in {name!r}",
                            fix=f"Use keys among {sorted(known)}")
        if key in params:
            raise DataError(f"parameter {key!r} given twice in dataset name {name!r}", fix="Give each key once")
        params[key] = _parse_value(value, known[key], f"{base} parameter {key!r}")
    return base, params


def check_name(name: str) -> None:
    """Refuse a dataset name `load` does not know, before any work (a server checks at start-up)."""
    base, _ = parse_name(name)  # a generated dataset's parameters are checked here
    if base in GENERATED:
        return
    if ":" in name:
        fmt = name.partition(":")[0]
        if fmt not in GENERIC_FORMATS:
            raise DataError(f"unknown dataset format {fmt!r} in {name!r}",
                            fix=f"Use one of {list(GENERIC_FORMATS)} followed by ':DIR', or "
                                f"{'/'.join(GENERATED)}:key=value,...")
    elif name not in _loaders():
        raise DataError(f"unknown dataset {name!r}",
                        fix=f"Use one of {sorted(_loaders())}, or recbole:DIR / tang:DIR for your own files")


def load(name: str, data: str | os.PathLike[str] | None = None, **kwargs: Any) -> Dataset:
    """Load a dataset by name (see `available_names`), ``recbole:DIR`` / ``tang:DIR``, or a
    generated dataset with its parameters (``synthetic:n_users=2000,seed=1``; ``kwargs`` given
    here override those of the name)."""
    check_name(name)
    base, params = parse_name(name)
    if base in GENERATED:
        return _loaders()[base](**{**params, **kwargs})
    if ":" in name:
        fmt, _, directory = name.partition(":")
        from socialrec.ingest.datasets import recbole, tang

        generic = {"recbole": recbole.load_recbole, "tang": tang.load_tang}
        return generic[fmt](directory, **kwargs)
    return _loaders()[name](data_dir(data), **kwargs)

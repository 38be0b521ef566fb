"""Saving fitted objects with a header that is checked before anything is unpickled.

A saved file is a pickle stream of two records: a small header (format, format version,
package version, the object's class, a fingerprint of the data it was fitted on, and anything
the caller adds), then the object. `read_header` reads only the first record, so a file fitted
on other data, or a file that is not ours, is refused without loading gigabytes. Writes are
atomic: a ``.partial`` file is renamed over the target only once it is complete.

Pickle runs code on load: load only files you wrote yourself.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

FORMAT = "socialrec-model"
FORMAT_VERSION = 2


def matrix_fingerprint(matrix: sp.spmatrix, *id_lists: Iterable[object]) -> str:
    """A digest of a sparse matrix's shape and stored entries (positions and values), and of
    any id lists given (the meaning of its rows and columns)."""
    m = sp.csr_matrix(matrix)
    m.sort_indices()
    digest = hashlib.sha256()
    digest.update(np.asarray(m.shape, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(m.indptr, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(m.indices, dtype=np.int64).tobytes())
    digest.update(np.ascontiguousarray(m.data, dtype=np.float64).tobytes())
    for ids in id_lists:
        digest.update(b"\x1e" + "\x1f".join(map(str, ids)).encode())
    return digest.hexdigest()


def save_object(obj: Any, path: str | os.PathLike[str], header: Mapping[str, Any]) -> Path:
    """Write ``obj`` after ``header`` (plus format, versions and class) to ``path`` atomically."""
    from socialrec import __version__

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"format": FORMAT, "format_version": FORMAT_VERSION, "socialrec": __version__,
            "class": f"{type(obj).__module__}.{type(obj).__qualname__}", **header}
    tmp = path.with_name(path.name + ".partial")
    with open(tmp, "wb") as f:
        pickle.dump(full, f, protocol=pickle.HIGHEST_PROTOCOL)
        pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The header of a saved file, without loading the object."""
    path = _existing(path)
    with open(path, "rb") as f:
        return _header(f, path)


def load_object(path: str | os.PathLike[str], expect: Mapping[str, Any] | None = None,
                what: str = "the data given") -> tuple[dict[str, Any], Any]:
    """(header, object) of a saved file. ``expect`` maps header keys to the values they must
    have (e.g. the fingerprint of the data the caller will use the object with); a mismatch is
    refused before the object is unpickled, naming ``what`` the caller compared against."""
    path = _existing(path)
    with open(path, "rb") as f:
        header = _header(f, path)
        if header.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{path}: saved with model format {header.get('format_version')} (socialrec "
                             f"{header.get('socialrec')}); this socialrec reads format {FORMAT_VERSION}. "
                             "Refit and save again.")
        for key, value in (expect or {}).items():
            if header.get(key) != value:
                described = ", ".join(f"{k}={header.get(k)!r}" for k in ("dataset", "n_users", "n_items") if k in header)
                raise ValueError(
                    f"{path}: fitted on other data, not the data given: {what} (header {key!r} is {_short(header.get(key))}, "
                    f"expected {_short(value)}; the file says {described or 'nothing more'}). Its indices would "
                    "point at the wrong users and items: refit on this data and save again.")
        return header, pickle.load(f)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 24 else text[:20] + "...'"


def _existing(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved model there; fit a model and save it first "
                                f"(model.save(path), or `socialrec recommend ... --save {path}`)")
    return path


def _header(f: Any, path: Path) -> dict[str, Any]:
    try:
        header = pickle.load(f)
    except Exception as exc:  # any unpickling failure means: not one of our files
        raise ValueError(f"{path}: not a saved socialrec model ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{path}: not a saved socialrec model (no {FORMAT!r} header); "
                         "save one with model.save(path)")
    return header

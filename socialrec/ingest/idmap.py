"""The one place where external ids (strings from files or clients) become internal indices.

Every other module works with dense int32 indices 0..n-1; only `IdMap` knows the external ids.
External ids are compared as strings, so `42` and `"42"` are the same user.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from socialrec.errors import UnknownIdError


class IdMap:
    """A bijection between external ids and indices ``0..len-1`` in first-seen order."""

    def __init__(self, ids: Iterable[object] = (), *, kind: str = "id") -> None:
        self.kind = kind
        self._external: list[str] = []
        self._index: dict[str, int] = {}
        self.add(ids)

    @classmethod
    def from_unique(cls, ids: Sequence[object], *, kind: str = "id") -> "IdMap":
        """Build from ids that must already be unique (a duplicate is an error, not merged)."""
        as_str = [str(i) for i in ids]
        if len(set(as_str)) != len(as_str):
            seen: set[str] = set()
            dup = next(i for i in as_str if i in seen or seen.add(i))  # type: ignore[func-returns-value]
            raise ValueError(f"duplicate {kind} id {dup!r}: {kind} ids must be unique")
        return cls(as_str, kind=kind)

    def __len__(self) -> int:
        return len(self._external)

    def __contains__(self, external_id: object) -> bool:
        return str(external_id) in self._index

    def __repr__(self) -> str:
        return f"IdMap(kind={self.kind!r}, n={len(self)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and self._external == other._external

    @property
    def external_ids(self) -> np.ndarray:
        """All external ids in index order (an object array of str)."""
        return np.asarray(self._external, dtype=object)

    def add(self, ids: Iterable[object]) -> np.ndarray:
        """Add unseen ids (keeping existing ones) and return the indices of all given ids."""
        out = []
        for raw in ids:
            key = str(raw)
            idx = self._index.get(key)
            if idx is None:
                idx = len(self._external)
                self._index[key] = idx
                self._external.append(key)
            out.append(idx)
        return np.asarray(out, dtype=np.int32)

    def to_index(self, ids: Iterable[object] | object, *, missing: str = "raise") -> np.ndarray | int:
        """External id(s) -> index/indices.

        ``missing="raise"`` raises `UnknownIdError` naming the unknown ids; ``missing="minus1"``
        returns -1 for them (for callers that report unknowns themselves).
        """
        if isinstance(ids, (str, bytes, int, np.integer)):
            return int(self.to_index([ids], missing=missing)[0])  # type: ignore[index]
        keys = [str(i) for i in ids]  # type: ignore[union-attr]
        get = self._index.get
        out = np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys)).astype(np.int32)
        if missing == "raise" and (out < 0).any():
            unknown = [k for k, i in zip(keys, out) if i < 0]
            raise UnknownIdError(self.kind, unknown, len(self))
        if missing not in ("raise", "minus1"):
            raise ValueError(f"missing must be 'raise' or 'minus1', got {missing!r}")
        return out

    def to_external(self, indices: Iterable[int] | int) -> np.ndarray | str:
        """Index/indices -> external id(s)."""
        if isinstance(indices, (int, np.integer)):
            return self._external[int(indices)]
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"{self.kind} index out of range 0..{len(self) - 1}")
        return np.asarray(self._external, dtype=object)[idx]

    def retire(self, external_id: object, tombstone: str) -> int:
        """Replace an id by ``tombstone`` at the same index (erasure: the raw id is gone, the
        index stays so that arrays keep their shape) and return the index. The tombstone is not
        addressable by its old id any more; it must not be an id already in the map."""
        key = str(external_id)
        idx = self._index.pop(key, None)
        if idx is None:
            raise UnknownIdError(self.kind, [key], len(self))
        if tombstone in self._index:
            raise ValueError(f"tombstone {tombstone!r} is already a {self.kind} id")
        self._external[idx] = tombstone
        self._index[tombstone] = idx
        return idx

    def copy(self) -> "IdMap":
        return IdMap(self._external, kind=self.kind)

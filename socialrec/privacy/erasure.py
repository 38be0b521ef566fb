"""Erasure of one user ("right to be forgotten") across everything the service keeps.

`erase_user` deletes, in this order:
1. the event store: every event the user made and every event about them (follows of them),
   their profile and its text, their consent record; deleted pages are overwritten (``secure_delete``) and the WAL is
   checkpointed and truncated, so no copy lingers in the file;
2. the embedding cache: the vectors of the user's own texts (profile, comments), found by the
   same key the cache uses (sha1 of the text), again with secure delete and a WAL truncate;
3. the models in memory: each model's ``forget_user`` empties the user's row and edges through
   the model's online update and retires their id from the id map;
4. saved model versions: ``rewrite_versions`` (given by the caller, who knows its registry)
   saves the forgotten in-memory model over the current version and deletes the others.
Only a salted pseudonym is kept (in the store's ``erased`` table, so that retraining leaves the
user out of read-only base datasets) and logged.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from socialrec.privacy.pseudonyms import pseudonym

ERASED_PREFIX = "\x00erased:"  # a retired id: never a valid external id (ids are printable)


def tombstone(user_hash: str) -> str:
    """The id that takes an erased user's place in an id map."""
    return f"{ERASED_PREFIX}{user_hash}"


def purge_embeddings(embedding_dir: Path, texts: list[str]) -> int:
    """Delete the cached vectors of ``texts`` (secure delete, WAL truncated); returns how many."""
    from socialrec.represent.cache import FILENAME, text_key

    path = embedding_dir / FILENAME
    if not texts or not path.exists():
        return 0
    con = sqlite3.connect(path, timeout=60.0)
    try:
        con.execute("PRAGMA secure_delete=ON")
        keys = list({text_key(t) for t in texts if t})
        with con:
            n = sum(con.execute("DELETE FROM vectors WHERE key = ?", (k,)).rowcount for k in keys)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return n


def erase_user(user_id: str, *, store: Any, embedding_dir: Path, salt: bytes, models: list[Any],
               rewrite_versions: Callable[[], dict[str, list[str]]], log: logging.Logger) -> dict[str, Any]:
    """Erase ``user_id`` everywhere (see the module docstring) and return a receipt that names
    the user only by pseudonym."""
    user_hash = pseudonym(user_id, salt)
    deleted = store.erase_user(user_id, user_hash)
    n_vectors = purge_embeddings(embedding_dir, deleted.pop("texts"))
    for model in models:
        model.forget_user(user_id, tombstone(user_hash))
    versions = rewrite_versions()
    receipt = {"user_hash": user_hash, "erased_at": time.time(), "events_deleted": deleted["events"],
               "events_about_user_deleted": deleted["events_about"], "profile_deleted": bool(deleted["profile"]),
               "embeddings_deleted": n_vectors, "model_versions_rewritten": versions.get("rewritten", []),
               "model_versions_deleted": versions.get("deleted", []), "in_memory_models_cleared": len(models)}
    log.info("erased user %s: %s", user_hash, {k: v for k, v in receipt.items() if k != "user_hash"})
    return receipt

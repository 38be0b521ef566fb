"""Erasure of one user ("right to be forgotten") across everything the service keeps.

`erase_user` deletes, in this order:
1. the event store: every event the user made and every event about them (follows of them),
   their profile and its text; deleted pages are overwritten (``secure_delete``) and the WAL is
   checkpointed and truncated, so no copy lingers in the file;
2. the embedding cache: the vectors of the user's own texts (profile, comments), found by the
   same key the cache uses (sha1 of the text), again with secure delete and a WAL truncate;
3. every saved model version: the user's row is removed (id blanked, ALS factor zeroed,
   interactions and social ties dropped) and the version rewritten;
4. the models in memory (`ServingModel.forget_user`).
Only a salted pseudonym is kept (in the store's ``erased`` table, so that retraining leaves the
user out of read-only base datasets) and logged. The caller schedules a retrain, which removes
the user's remaining anonymous influence on the item factors.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path
from typing import Any

import numpy as np

from socialrec.privacy.pseudonyms import pseudonym


def _purge_embeddings(embedding_dir: Path, texts: list[str]) -> int:
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


def _rewrite_versions(registry: Any, user_id: str) -> list[str]:
    from socialrec.serve.bundle import Bundle
    from socialrec.serve.model import forget_row

    rewritten = []
    for directory in registry.version_dirs():
        bundle = Bundle.load(directory)
        rows = np.flatnonzero(bundle.user_ids.astype(str) == user_id)
        if rows.size == 0:
            continue
        for u in rows.tolist():
            forget_row(bundle, u)
        bundle.save(directory)
        rewritten.append(directory.name)
    return rewritten


def erase_user(user_id: str, *, store: Any, registry: Any, embedding_dir: Path, salt: bytes,
               models: list[Any], log: logging.Logger) -> dict[str, Any]:
    """Erase ``user_id`` everywhere (see the module docstring) and return a receipt that names
    the user only by pseudonym."""
    user_hash = pseudonym(user_id, salt)
    deleted = store.erase_user(user_id, user_hash)
    n_vectors = _purge_embeddings(embedding_dir, deleted.pop("texts"))
    versions = _rewrite_versions(registry, user_id)
    for model in models:
        model.forget_user(user_id)
    receipt = {"user_hash": user_hash, "erased_at": time.time(), "events_deleted": deleted["events"],
               "events_about_user_deleted": deleted["events_about"], "profile_deleted": bool(deleted["profile"]),
               "embeddings_deleted": n_vectors, "model_versions_rewritten": versions,
               "in_memory_models_cleared": len(models)}
    log.info("erased user %s: %s", user_hash, {k: v for k, v in receipt.items() if k != "user_hash"})
    return receipt

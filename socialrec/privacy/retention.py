"""Retention: stored events older than a number of days are deleted, with the cached vectors of
their texts. The service sweeps at start-up and then periodically; what a sweep deletes is gone
from exports at once and from the next trained version (the live model keeps what it learned
until then). The base dataset is read-only and not swept."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from socialrec.privacy.erasure import purge_embeddings

DAY_SECONDS = 86_400.0


def sweep(store: Any, *, retention_days: float, now: float, embedding_dir: Path, log: logging.Logger) -> dict[str, Any]:
    """Delete events with a timestamp before ``now - retention_days`` days from ``store`` (an
    event store with ``delete_older_than``) and their texts' vectors; returns a summary."""
    cutoff = now - retention_days * DAY_SECONDS
    n, texts = store.delete_older_than(cutoff)
    vectors = purge_embeddings(embedding_dir, texts) if texts else 0
    if n:
        log.info("retention: deleted %d events older than %g days (%d cached vectors)", n, retention_days, vectors)
    return {"cutoff": cutoff, "events_deleted": n, "embeddings_deleted": vectors}

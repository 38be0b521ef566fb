"""Pseudonyms for user ids in logs, metrics and erasure records: a keyed hash (HMAC-SHA256 with a
secret salt kept in the service's state directory), so a log line can be joined to other log
lines of the same user but not reversed by hashing a list of guessed ids."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SALT_FILE = "pseudonym.salt"


def load_salt(state_dir: str | Path) -> bytes:
    """The state directory's salt, created (readable by the owner only) on first use."""
    path = Path(state_dir) / SALT_FILE
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    salt = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(salt)
    os.replace(tmp, path)
    return salt


def pseudonym(user_id: str, salt: bytes) -> str:
    """16 hex characters identifying ``user_id`` under ``salt``."""
    return hmac.new(salt, user_id.encode("utf-8"), hashlib.sha256).hexdigest()[:16]

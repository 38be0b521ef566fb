"""Encryption at rest of the user text a service stores (event comments, profile names and
bios), with a key from the environment.

The key is a Fernet key (``cryptography``: AES-128-CBC with an HMAC-SHA256 tag, a fresh IV per
value) in ``SOCIALREC_DATA_KEY``; create one with::

    python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"

A store written under one key keeps an encrypted check value; opening it with another key, or
with none, is an error that says so, never text decrypted into garbage. Without a key the text
is stored as it comes and the service says so at start-up. A lost key cannot be recovered: the
text it protected is gone with it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from socialrec.errors import ConfigError, MissingDependencyError

ENV_VAR = "SOCIALREC_DATA_KEY"
NEW_KEY_HELP = ('create one with: python -c "from cryptography.fernet import Fernet; '
                'print(Fernet.generate_key().decode())"')
CHECK_PLAINTEXT = "socialrec-data-key-check"


class WrongKeyError(ConfigError):
    """Stored text was encrypted under another key (or the key is missing)."""


class TextCipher:
    """Encrypts and decrypts text values with one Fernet key. ``None`` passes through."""

    def __init__(self, key: str | bytes) -> None:
        try:
            from cryptography.fernet import Fernet
        except ImportError as exc:
            raise MissingDependencyError("cryptography", "serve", "Encryption of stored text") from exc
        try:
            self._fernet = Fernet(key.encode("ascii") if isinstance(key, str) else key)
        except (ValueError, UnicodeEncodeError, TypeError):
            raise ConfigError(f"{ENV_VAR} is not a Fernet key (32 bytes, URL-safe base64); {NEW_KEY_HELP}") from None

    def encrypt(self, text: str | None) -> str | None:
        if text is None:
            return None
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str | None) -> str | None:
        """The text of ``token``; `WrongKeyError` when this key did not encrypt it."""
        if token is None:
            return None
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeEncodeError):
            raise WrongKeyError(f"a stored value does not decrypt with {ENV_VAR}: it was written under another key") from None

    def check_value(self) -> str:
        """An encrypted known text, kept beside the data to recognise the key later."""
        return self.encrypt(CHECK_PLAINTEXT)  # type: ignore[return-value]

    def verify(self, check: str, where: str) -> None:
        """Raise `WrongKeyError` unless ``check`` (from `check_value`) was made with this key."""
        try:
            ok = self.decrypt(check) == CHECK_PLAINTEXT
        except WrongKeyError:
            ok = False
        if not ok:
            raise WrongKeyError(f"{ENV_VAR} is not the key the user text in {where} was encrypted with; start with "
                                "that key (a lost key cannot be recovered: the text it protects is unreadable)")


def cipher_from_env(environ: Mapping[str, str] | None = None) -> TextCipher | None:
    """The cipher of ``SOCIALREC_DATA_KEY``, or None when it is unset or empty."""
    key = (os.environ if environ is None else environ).get(ENV_VAR, "").strip()
    return TextCipher(key) if key else None

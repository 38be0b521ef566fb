"""Configuration as frozen dataclasses, loadable from TOML; an unknown key is an error.

A ground module: it holds the loading and checking shared by every stage and imports no layer.
Each stage's settings live beside what they configure (the experiment's in
`socialrec.evaluate.config`, the service's in `socialrec.serve.settings`).
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Any

from socialrec.errors import ConfigError

def from_dict(cls: type, values: dict[str, Any], *, source: str = "configuration") -> Any:
    """Build a config dataclass, refusing unknown keys with the list of valid ones."""
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(f"{source}: unknown key(s) {unknown} for {cls.__name__}; valid keys: {', '.join(names)}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    try:
        return cls(**converted)
    except TypeError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_toml(cls: type, path: str | Path, *, section: str) -> Any:
    """Read a config dataclass from a TOML file (keys at the top level or under ``[section]``)."""
    p = Path(path)
    try:
        values = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    values = values.get(section, values)
    return from_dict(cls, values, source=str(p))

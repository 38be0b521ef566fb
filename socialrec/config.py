"""Configuration as frozen dataclasses, loadable from TOML; an unknown key is an error.

Each stage's settings live beside what they configure; this module holds the experiment's.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialrec.errors import ConfigError


@dataclass(frozen=True)
class ExperimentConfig:
    """What `socialrec evaluate` runs.

    dataset: a dataset name (see `socialrec datasets`) or recbole:DIR / tang:DIR.
    protocol: random-811, fixed, loo, temporal, cold-item, cold-user, or llmrank (fixed candidates).
    models: model names (see `socialrec.evaluate.suite`).
    ks: metric cut-offs. seed: split and tie-breaking seed.
    quick: default hyperparameters only (no validation grid search).
    output / report: where to write results JSON and the HTML report (optional).
    """

    dataset: str
    protocol: str = "random-811"
    models: tuple[str, ...] = ("pop", "itemknn", "ease", "als")
    ks: tuple[int, ...] = (10, 20)
    seed: int = 0
    quick: bool = False
    output: str | None = None
    report: str | None = None
    data: str | None = field(default=None)

    def __post_init__(self) -> None:
        from socialrec.evaluate.candidates import CANDIDATE_PROTOCOLS
        from socialrec.ingest.split import PROTOCOLS

        if self.protocol not in PROTOCOLS + CANDIDATE_PROTOCOLS:
            raise ConfigError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if not self.models:
            raise ConfigError("models is empty: name at least one model, e.g. models = [\"ease\"]")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be positive integers, got {self.ks}")


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


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read an `ExperimentConfig` from a TOML file (keys at the top level or under [experiment])."""
    p = Path(path)
    try:
        values = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file {p} not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML ({exc})") from None
    values = values.get("experiment", values)
    return from_dict(ExperimentConfig, values, source=str(p))

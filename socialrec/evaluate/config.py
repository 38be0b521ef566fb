"""The experiment's configuration: what `socialrec evaluate` runs, as a frozen dataclass from TOML."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from socialrec.config import load_toml
from socialrec.engine import ENGINES
from socialrec.errors import ConfigError
from socialrec.evaluate.candidates import CANDIDATE_PROTOCOLS
from socialrec.evaluate.experiment import TEST_HISTORIES
from socialrec.ingest.split import PROTOCOLS


@dataclass(frozen=True)
class ExperimentConfig:
    """What `socialrec evaluate` runs.

    dataset: a dataset name (see `socialrec datasets`) or recbole:DIR / tang:DIR.
    protocol: random-811, fixed, loo, temporal, cold-item, cold-user, or llmrank (fixed candidates).
    models: model names (see `socialrec.evaluate.suite`).
    ks: metric cut-offs. seed: split and tie-breaking seed.
    quick: default hyperparameters only (no validation grid search).
    output / report: where to write results JSON and the HTML report (optional).
    scrub_text: scrub the dataset's texts of personal data right after loading it
        (`socialrec.privacy.scrub.scrub_dataset`), before any model embeds them.
    engine: where grid points and test chunks run: "local" (this process) or "ray" (extra `ray`).
    workers: Ray workers (a local Ray instance with that many CPUs; on a cluster, how many calls
        run at once; default: the machine's or the cluster's CPUs). address: a Ray cluster's
        "HOST:6379" (default: start a local instance). Results do not depend on these three.
    test_history: what the chosen model reads of each test user: "train" (its training rows) or
        "train+valid" (plus the user's validation items, folded in without a refit; local engine),
        `socialrec.evaluate.experiment.tune_and_test`.
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
    scrub_text: bool = False
    engine: str = "local"
    workers: int | None = None
    address: str | None = None
    test_history: str = "train"

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS + CANDIDATE_PROTOCOLS:
            raise ConfigError(f"protocol {self.protocol!r} is not one of {', '.join(PROTOCOLS)}")
        if not self.models:
            raise ConfigError("models is empty: name at least one model, e.g. models = [\"ease\"]")
        if self.engine not in ENGINES:
            raise ConfigError(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if self.engine == "local" and (self.address is not None or self.workers not in (None, 1)):
            raise ConfigError("workers and address apply to the ray engine: drop them or set engine = \"ray\"")
        if self.workers is not None and self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if self.test_history not in TEST_HISTORIES:
            raise ConfigError(f"test_history {self.test_history!r} is not one of {', '.join(TEST_HISTORIES)}")
        if self.test_history != "train" and self.engine != "local":
            raise ConfigError("test_history \"train+valid\" folds validation items into the chosen model in this "
                              "process: set engine = \"local\"")
        if self.test_history != "train" and self.protocol in CANDIDATE_PROTOCOLS:
            raise ConfigError(f"test_history applies to full-ranking protocols; {self.protocol} refits on training "
                              "+ validation already")
        if not self.ks or min(self.ks) < 1:
            raise ConfigError(f"ks must be positive integers, got {self.ks}")


def load_experiment(path: str | Path) -> ExperimentConfig:
    """Read an `ExperimentConfig` from a TOML file (keys at the top level or under [experiment])."""
    return load_toml(ExperimentConfig, path, section="experiment")

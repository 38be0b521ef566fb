"""Configuration: frozen dataclasses from TOML, and an unknown key is an error."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from socialrec.cli.main import main
from socialrec.errors import ConfigError
from socialrec.evaluate.config import ExperimentConfig, load_experiment


def test_toml_round_trip_and_frozen(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text('[experiment]\ndataset = "synthetic"\nmodels = ["pop", "ease"]\nks = [5, 10]\nseed = 3\n')
    cfg = load_experiment(path)
    assert cfg == ExperimentConfig(dataset="synthetic", models=("pop", "ease"), ks=(5, 10), seed=3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.seed = 4  # type: ignore[misc]


def test_unknown_key_names_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    path.write_text('dataset = "synthetic"\nmodel = ["pop"]\n')
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['model'\].*valid keys: dataset, protocol, models"):
        load_experiment(path)


def test_bad_values_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="protocol 'random' is not one of"):
        ExperimentConfig(dataset="synthetic", protocol="random")
    path = tmp_path / "bad.toml"
    path.write_text("dataset = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_experiment(path)


def test_cli_reads_the_config_and_options_override_it(tmp_path: Path) -> None:
    path = tmp_path / "exp.toml"
    out = tmp_path / "r.json"
    path.write_text(f'dataset = "synthetic"\nmodels = ["pop", "itemknn"]\nquick = true\noutput = "{out}"\n')
    assert main(["evaluate", "--config", str(path), "--k", "5"]) == 0
    doc = json.loads(out.read_text())
    assert set(doc["models"]) == {"pop", "itemknn"} and "ndcg@5" in doc["models"]["pop"]

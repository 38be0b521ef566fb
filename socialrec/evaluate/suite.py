"""The models the CLI and benchmarks know by name, with their search grids.

An explicit table, not a name-guessing registry: adding a model means adding a line here.
Grids are small on purpose (they run on 2 cores); each point is fitted on training data and
judged on validation NDCG@10.
"""

from __future__ import annotations

from socialrec.evaluate.experiment import ModelSpec
from socialrec.retrieve.ease import EASE
from socialrec.retrieve.implicit_models import ALS, BPR
from socialrec.retrieve.knn import ItemKNN, UserKNN
from socialrec.retrieve.popular import MostPopular


def model_specs(*, quick: bool = False) -> dict[str, ModelSpec]:
    """Name -> spec. ``quick`` shrinks every grid to its default point (for demos and tests)."""
    specs = {
        "pop": ModelSpec("pop", MostPopular),
        "itemknn": ModelSpec("itemknn", ItemKNN, {"neighbors": [50, 200], "shrink": [0.0, 10.0], "idf": [False, True]}),
        "userknn": ModelSpec("userknn", UserKNN, {"neighbors": [50, 200], "shrink": [0.0, 10.0]}),
        "ease": ModelSpec("ease", EASE, {"l2": [30.0, 100.0, 300.0]}),
        "als": ModelSpec("als", ALS, {"factors": [64, 128], "regularization": [0.05, 1.0], "alpha": [1.0, 10.0]}),
        "bpr": ModelSpec("bpr", BPR, {"factors": [64], "learning_rate": [0.01, 0.05], "regularization": [0.001, 0.01]}),
    }
    if quick:
        specs = {name: ModelSpec(name, s.make) for name, s in specs.items()}
    return specs


BASELINES = ("pop", "itemknn", "userknn", "ease", "als", "bpr")


def resolve(names: list[str], *, quick: bool = False) -> list[ModelSpec]:
    """Specs for CLI names, with an error that lists the known names."""
    specs = model_specs(quick=quick)
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown model(s) {unknown}; known: {', '.join(specs)}")
    return [specs[n] for n in names]

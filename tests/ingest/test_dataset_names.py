"""A generated dataset takes its size from its name: ``synthetic:key=value,...``, parsed once in
the dataset table, typed like the loader's defaults; unknown keys are errors naming the known ones."""

from __future__ import annotations

import pytest

from socialrec.errors import DataError
from socialrec.ingest.datasets import check_name, load, parse_name


def test_the_name_carries_the_generator_arguments_typed_like_its_defaults() -> None:
    name, params = parse_name("synthetic:n_users=40,n_items=300,interactions_per_user=5,seed=3,homophily=0.5")
    assert name == "synthetic"
    assert params == {"n_users": 40, "n_items": 300, "interactions_per_user": 5, "seed": 3, "homophily": 0.5}
    assert isinstance(params["n_users"], int) and isinstance(params["homophily"], float)
    assert parse_name("synthetic") == ("synthetic", {})
    assert parse_name("lastfm") == ("lastfm", {}) and parse_name("recbole:/a:b") == ("recbole:/a:b", {})


def test_load_builds_the_dataset_of_that_size() -> None:
    ds = load("synthetic:n_users=40,n_items=300,interactions_per_user=5,seed=3")
    assert (ds.n_users, ds.n_items, len(ds.interactions)) == (40, 300, 200)
    same = load("synthetic", n_users=40, n_items=300, interactions_per_user=5, seed=3)
    assert ds.interactions.equals(same.interactions)


@pytest.mark.parametrize("name, message", [
    ("synthetic:n_user=40", "unknown parameter 'n_user'"),
    ("synthetic:n_users=forty", "not a valid integer"),
    ("synthetic:n_users", "malformed parameter"),
    ("synthetic:seed=1,seed=2", "given twice"),
])
def test_bad_parameters_are_refused_before_any_work_naming_the_known_keys(name: str, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        check_name(name)
    if "unknown" in message or "malformed" in message:
        assert "interactions_per_user" in str(info.value) and "n_items" in str(info.value)
    with pytest.raises(DataError):
        load(name)

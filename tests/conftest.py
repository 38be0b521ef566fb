"""Real datasets, each loaded at most once per test session (skipped when the data is absent, except
under CI=true, where a missing dataset fails the test)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from socialrec.ingest.datasets import DEFAULT_DATA_DIR, data_dir
from socialrec.ingest.schema import Dataset

REPO_ROOT = Path(__file__).resolve().parents[1]


def real_data_root() -> Path:
    """$SOCIALREC_DATA, else ../shared/data next to the repository (not the working directory)."""
    return data_dir(os.environ.get("SOCIALREC_DATA") or REPO_ROOT / DEFAULT_DATA_DIR)


def _need(*folder: str) -> Path:
    root = real_data_root()
    if not root.joinpath(*folder).is_dir():
        message = (f"real dataset folder {root.joinpath(*folder)} is absent "
                   f"(set SOCIALREC_DATA to the shared data directory to run this test)")
        if os.environ.get("CI", "").lower() == "true":
            # CI has the data beside the clone: a missing folder is a broken set-up, not a skip.
            pytest.fail(f"CI=true but {message}; CI must find the datasets at ../shared/data or $SOCIALREC_DATA",
                        pytrace=False)
        pytest.skip(message)
    return root


def _load(folder: tuple[str, ...], loader: Callable[[Path], Dataset]) -> Dataset:
    return loader(_need(*folder))


@pytest.fixture(scope="session")
def real_data() -> Path:
    return _need()


@pytest.fixture(scope="session")
def real_movielens() -> Dataset:
    from socialrec.ingest.datasets.movielens import load_movielens_100k
    return _load(("movielens-100k",), load_movielens_100k)


@pytest.fixture(scope="session")
def real_lastfm() -> Dataset:
    from socialrec.ingest.datasets.lastfm import load_lastfm
    return _load(("lastfm-hetrec2011",), load_lastfm)


@pytest.fixture(scope="session")
def real_lastfm_recbole() -> Dataset:
    from socialrec.ingest.datasets.recbole import load_lastfm_recbole
    return _load(("lastfm-recbole",), load_lastfm_recbole)


@pytest.fixture(scope="session")
def real_ciao() -> Dataset:
    from socialrec.ingest.datasets.tang import load_ciao
    return _load(("ciao", "tang"), load_ciao)


@pytest.fixture(scope="session")
def real_ciao_recdiff() -> Dataset:
    from socialrec.ingest.datasets.recdiff import load_ciao_recdiff
    return _load(("ciao", "recdiff-split"), load_ciao_recdiff)


@pytest.fixture(scope="session")
def real_amazon_games() -> Dataset:
    from socialrec.ingest.datasets.amazon import load_amazon_games
    return _load(("amazon-games",), load_amazon_games)


@pytest.fixture(scope="session")
def real_amazon_fashion() -> Dataset:
    from socialrec.ingest.datasets.amazon_reviews import load_amazon_fashion
    return _load(("amazon-fashion-reviews",), load_amazon_fashion)


@pytest.fixture(scope="session", autouse=True)
def _no_saved_sentiment_models(tmp_path_factory: pytest.TempPathFactory) -> object:
    """Sentiment models trained on this machine (``socialrec sentiment-train`` saves them in the
    cache) would silently replace the lexicons in every test: point the default model folder
    at an empty one, so tests see what a clean clone sees. Tests of trained models pass their
    own folder."""
    before = os.environ.get("SOCIALREC_SENTIMENT_MODELS")
    os.environ["SOCIALREC_SENTIMENT_MODELS"] = str(tmp_path_factory.mktemp("no-sentiment-models"))
    yield
    if before is None:
        os.environ.pop("SOCIALREC_SENTIMENT_MODELS", None)
    else:
        os.environ["SOCIALREC_SENTIMENT_MODELS"] = before

"""``device="cuda"`` fits of mf and dp-mf (marker ``cuda``: skipped without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from socialrec.retrieve.dp_mf import DPMF, MF  # noqa: E402
from tests.contracts.recommender_contract import block_data  # noqa: E402

pytestmark = pytest.mark.cuda


@pytest.fixture(scope="module", autouse=True)
def _need_cuda() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False")


@pytest.mark.parametrize("make", [lambda: MF(factors=8, learning_rate=0.05, epochs=20, batch_size=50, device="cuda"),
                                  lambda: DPMF(target_epsilon=30.0, factors=8, learning_rate=0.05, epochs=20,
                                               batch_size=50, device="cuda")])
def test_a_cuda_fit_learns_the_blocks_and_returns_numpy(make) -> None:  # type: ignore[no-untyped-def]
    data = block_data(n_blocks=4, users_per_block=50, items_per_block=10)
    model = make().fit(data)
    assert isinstance(model.item_factors_, np.ndarray) and np.isfinite(model.item_factors_).all()
    ids, _ = model.recommend(np.arange(data.shape[0]), k=3)
    assert (ids // 10 == (np.arange(data.shape[0]) // 50)[:, None]).mean() >= 0.9
    eps, _ = model.privacy_spent()
    assert eps <= 30.0 or eps == float("inf")

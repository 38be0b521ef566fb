"""Modality vectors that are missing ("no vector": a zero row) stay missing through centring and
standardising, and a new item is normalised by the degrees of each modality's own graph."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("torch")

from socialrec.retrieve.multimodal import (  # noqa: E402
    ModalityProfile, MultimodalGCN, apply_standardize, centred_unit_rows, knn_graph, modality_graph, present_mean,
    standardize)
from tests.contracts.test_multimodal import FAST, multimodal_train  # noqa: E402


def test_missing_vectors_stay_zero_and_do_not_move_the_means() -> None:
    image = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 0.0]], dtype=np.float32)  # item 2 has no image
    audio = np.array([[1.0], [2.0], [3.0]], dtype=np.float32)
    np.testing.assert_allclose(present_mean(image), [2.0, 1.0])
    unit = centred_unit_rows(image, present_mean(image))
    np.testing.assert_allclose(unit, [[-np.sqrt(0.5), -np.sqrt(0.5)], [np.sqrt(0.5), np.sqrt(0.5)], [0.0, 0.0]],
                               atol=1e-6)
    x, mean, std = standardize({"image": image, "audio": audio})
    np.testing.assert_allclose(mean, [2.0, 1.0, 2.0])
    np.testing.assert_allclose(std, [1.0, 1.0, np.std([1.0, 2.0, 3.0])], rtol=1e-6)
    np.testing.assert_allclose(x[2, :2], 0.0)  # not (0 - mean) / std
    np.testing.assert_allclose(x[:2, :2], [[-1.0, -1.0], [1.0, 1.0]])
    new = apply_standardize({"image": np.zeros((1, 2), np.float32), "audio": np.array([[2.0]], np.float32)}, mean, std)
    np.testing.assert_allclose(new, [[0.0, 0.0, 0.0]], atol=1e-6)


def test_a_new_item_with_one_modality_gets_no_made_up_similarity_in_the_other() -> None:
    rng = np.random.default_rng(0)
    data = sp.csr_matrix((rng.random((12, 8)) < 0.5).astype(np.float32))
    model = ModalityProfile().fit(multimodal_train(data, items_per_block=2))
    model.partial_fit_item_vectors({"image": rng.normal(size=(1, 8))})
    image_dim = model.item_features_["image"].shape[1]
    np.testing.assert_array_equal(model.item_vectors_[-1, image_dim:], 0.0)  # its audio block
    assert np.abs(model.item_vectors_[-1, :image_dim]).sum() > 0


def test_modality_graph_keeps_each_modalitys_degrees() -> None:
    rng = np.random.default_rng(1)
    feats = {"image": rng.normal(size=(30, 4)), "audio": rng.normal(size=(30, 3))}
    _, degrees = modality_graph(feats, k=3)
    for name, m in feats.items():
        g = knn_graph(m, 3)
        np.testing.assert_array_equal(degrees[name], np.asarray(g.maximum(g.T).sum(axis=1)).ravel())
    data = sp.csr_matrix((rng.random((20, 16)) < 0.4).astype(np.float32))
    model = MultimodalGCN(**{**FAST, "epochs": 5}).fit(multimodal_train(data, items_per_block=4))
    assert set(model.modality_degrees_) == {"image", "audio"}
    assert all(len(d) == 16 for d in model.modality_degrees_.values())

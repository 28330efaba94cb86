import numpy as np
import pytest
from helpers import run_serialization_test

from keras_mlh.losses import PairwiseHashLoss


def _numpy_pairwise(y, u, ry, ru, scale, quantization_weight):
    s = (y @ ry.T > 0).astype(float)
    theta = scale * u @ ru.T
    nll = np.log1p(np.exp(theta)) - s * theta
    per_sample = nll.mean(1)
    per_sample += quantization_weight * np.mean((u - np.sign(u)) ** 2, axis=1)
    return per_sample.mean()


@pytest.mark.parametrize("multi_label", [False, True])
def test_batch_pairs_match_numpy(multi_label):
    rng = np.random.default_rng(1)
    u = np.tanh(rng.normal(size=(6, 16)) * 2)
    if multi_label:
        y = (rng.random((6, 4)) < 0.5).astype(float)
    else:
        y = np.eye(4)[rng.integers(0, 4, 6)]
    loss = PairwiseHashLoss(theta_scale=0.5, quantization_weight=0.2)
    expected = _numpy_pairwise(y, u, y, u, 0.5, 0.2)
    np.testing.assert_allclose(float(loss(y, u)), expected, rtol=1e-5)


def test_other_references_match_numpy():
    rng = np.random.default_rng(2)
    u = np.tanh(rng.normal(size=(4, 8)))
    y = np.eye(3)[[0, 1, 2, 0]]
    ru = np.tanh(rng.normal(size=(7, 8)))
    ry = np.eye(3)[rng.integers(0, 3, 7)]
    loss = PairwiseHashLoss(theta_scale=1.0, quantization_weight=0.0)
    value = loss(
        {"labels": y, "reference_labels": ry},
        {"codes": u, "reference_codes": ru},
    )
    expected = _numpy_pairwise(y, u, ry, ru, 1.0, 0.0)
    np.testing.assert_allclose(float(value), expected, rtol=1e-5)


def test_stable_for_large_inner_products():
    # Theta = 0.5 * 64 * 100 would overflow a naive log(1 + exp(theta)).
    u = np.full((2, 64), 100.0, dtype="float32")
    y = np.eye(2, dtype="float32")
    value = float(PairwiseHashLoss(quantization_weight=0.0)(y, u))
    assert np.isfinite(value) and value > 1000


def test_similar_pairs_prefer_equal_codes():
    loss = PairwiseHashLoss(quantization_weight=0.0)
    y = np.eye(2)[[0, 0]]
    same = np.ones((2, 16), "float32")
    opposite = np.stack([np.ones(16), -np.ones(16)]).astype("float32")
    assert float(loss(y, same)) < float(loss(y, opposite))


def test_config_and_bad_scale():
    loss = PairwiseHashLoss(theta_scale=0.25, quantization_weight=0.05)
    assert run_serialization_test(loss).theta_scale == 0.25
    with pytest.raises(ValueError, match="theta_scale"):
        PairwiseHashLoss(theta_scale=0)

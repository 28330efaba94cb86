import keras
import numpy as np
import pytest
from helpers import center_loss_batch, run_serialization_test

from keras_mlh.centers import hash_centers
from keras_mlh.losses import CenterHashLoss


def _numpy_center_loss(y, u, centers, normalization, quantization_weight):
    q = centers.shape[1]
    cos = (u / np.linalg.norm(u, axis=1, keepdims=True)) @ (centers.T / np.sqrt(q))
    logits = np.sqrt(q) * cos
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    per_sample = -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p), axis=1)
    if normalization == "sample_class":
        per_sample /= centers.shape[0]
    per_sample += quantization_weight * np.mean((np.abs(u) - 1) ** 2, axis=1)
    return per_sample.mean()


@pytest.mark.parametrize("normalization", ["sample", "sample_class"])
@pytest.mark.parametrize("multi_label", [False, True])
def test_matches_numpy(normalization, multi_label):
    rng = np.random.default_rng(0)
    centers, u, y = center_loss_batch(multi_label, [2], rng)
    loss = CenterHashLoss(centers, normalization=normalization, quantization_weight=0.3)
    expected = _numpy_center_loss(y, u, centers, normalization, 0.3)
    np.testing.assert_allclose(float(loss(y, u)), expected, rtol=1e-5)


def test_loss_is_smallest_at_own_center_and_finite_when_saturated():
    centers = hash_centers(4, 16).centers
    loss = CenterHashLoss(centers, quantization_weight=0.0)
    y = keras.ops.one_hot(keras.ops.array([1]), 4)
    at_center = float(loss(y, centers[1:2].astype("float32")))
    elsewhere = float(loss(y, centers[2:3].astype("float32")))
    assert at_center < elsewhere
    # With a huge scale P is exactly 0 or 1 in float32; the epsilon keeps it finite.
    sharp = CenterHashLoss(centers, scale=1e4)
    assert np.isfinite(float(sharp(y, centers[2:3].astype("float32"))))
    zero = float(loss(y, np.zeros((1, 16), "float32")))
    assert np.isfinite(zero)


def test_config_round_trip():
    loss = CenterHashLoss(hash_centers(3, 8).centers, normalization="sample_class")
    run_serialization_test(loss)


@pytest.mark.parametrize(
    "centers, kwargs, match",
    [
        (np.zeros((3, 8)), {}, "±1"),
        (np.ones(8), {}, "±1"),
        (np.ones((3, 8)), {"normalization": "batch"}, "normalization"),
    ],
)
def test_bad_arguments(centers, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CenterHashLoss(centers, **kwargs)

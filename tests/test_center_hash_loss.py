import keras
import numpy as np
import pytest
from helpers import run_serialization_test

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
    centers = hash_centers(6, 16).centers.astype(np.float64)
    u = np.tanh(rng.normal(size=(5, 16)))
    if multi_label:
        y = (rng.random((5, 6)) < 0.4).astype(np.float64)
        y[0] = 0
        y[0, 2] = 1
    else:
        y = np.eye(6)[rng.integers(0, 6, 5)]
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


def _numpy_centroid_loss(y, u, centers):
    """One softmax per image: its labels' centroid code against the other classes."""
    q = centers.shape[1]
    unit = u / np.linalg.norm(u, axis=1, keepdims=True)
    losses = []
    for labels, code in zip(y, unit, strict=True):
        target = np.sign(labels @ centers)
        target = target / np.linalg.norm(target)
        negatives = centers[labels == 0] / np.sqrt(q)
        logits = np.sqrt(q) * np.concatenate([[code @ target], negatives @ code])
        p = np.exp(logits - logits.max())
        p /= p.sum()
        losses.append(-np.log(p[0]) - np.sum(np.log(1 - p[1:])))
    return np.mean(losses)


def test_centroid_target_matches_numpy_and_equals_labels_on_one_hot():
    rng = np.random.default_rng(1)
    centers = hash_centers(6, 16).centers.astype(np.float64)
    u = np.tanh(rng.normal(size=(5, 16)))
    y = np.zeros((5, 6))
    y[[0, 0, 1, 1, 1, 2, 3, 4], [0, 3, 1, 2, 5, 4, 0, 2]] = 1
    centroid = CenterHashLoss(
        centers, multi_label_target="centroid", quantization_weight=0.0
    )
    np.testing.assert_allclose(
        float(centroid(y, u)), _numpy_centroid_loss(y, u, centers), rtol=1e-5
    )
    labels = CenterHashLoss(centers, quantization_weight=0.0)
    assert abs(float(centroid(y, u)) - float(labels(y, u))) > 1e-3
    one_hot = np.eye(6)[[0, 1, 4, 4, 5]]
    np.testing.assert_allclose(
        float(centroid(one_hot, u)), float(labels(one_hot, u)), rtol=1e-6
    )


def test_centroid_target_is_smallest_at_the_sign_of_the_summed_centers():
    centers = hash_centers(5, 32).centers
    y = np.zeros((1, 5), "float32")
    y[0, [0, 1, 3]] = 1
    loss = CenterHashLoss(
        centers, multi_label_target="centroid", quantization_weight=0.0
    )
    at_centroid = float(loss(y, np.sign(y @ centers).astype("float32")))
    for label in (0, 1, 3):
        assert at_centroid < float(
            loss(y, centers[label : label + 1].astype("float32"))
        )


def test_config_round_trip():
    loss = CenterHashLoss(hash_centers(3, 8).centers, normalization="sample_class")
    run_serialization_test(loss)
    centroid = CenterHashLoss(hash_centers(3, 8).centers, multi_label_target="centroid")
    assert run_serialization_test(centroid).multi_label_target == "centroid"


@pytest.mark.parametrize(
    "centers, kwargs, match",
    [
        (np.zeros((3, 8)), {}, "±1"),
        (np.ones(8), {}, "±1"),
        (np.ones((3, 8)), {"normalization": "batch"}, "normalization"),
        (np.ones((3, 8)), {"multi_label_target": "mean"}, "multi_label_target"),
    ],
)
def test_bad_arguments(centers, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CenterHashLoss(centers, **kwargs)

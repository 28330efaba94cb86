import keras
import numpy as np
from helpers import run_serialization_test

from keras_mlh.losses import MutualHashLoss


def test_matches_numpy_cosine_distance():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(5, 16)), rng.normal(size=(5, 16))
    cos = np.sum(a * b, 1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    np.testing.assert_allclose(
        float(MutualHashLoss()(a, b)), np.mean(1 - cos), rtol=1e-5
    )


def test_range_and_zero_codes():
    u = np.ones((2, 8), "float32")
    assert abs(float(MutualHashLoss()(u, u))) < 1e-6
    assert abs(float(MutualHashLoss()(u, -u)) - 2.0) < 1e-6
    assert np.isfinite(float(MutualHashLoss()(np.zeros((2, 8)), u)))


def test_gradient_flows_only_to_prediction_when_target_is_detached(gradients):
    a = np.random.default_rng(0).normal(size=(3, 8))
    b = np.random.default_rng(1).normal(size=(3, 8))
    grad_a, grad_b = gradients(
        lambda a, b: MutualHashLoss()(keras.ops.stop_gradient(b), a), a, b
    )
    assert np.all(grad_b == 0)
    assert np.abs(grad_a).sum() > 0


def test_config_round_trip():
    run_serialization_test(MutualHashLoss(name="mutual"))

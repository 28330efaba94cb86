import keras
import numpy as np
import pytest
from helpers import center_loss_batch, run_serialization_test

from keras_mlh.centers import hash_centers
from keras_mlh.losses import CSQHashLoss


def _numpy_csq_loss(y, u, centers, tie_center, lam):
    """DeepHash-pytorch's CSQLoss.forward, in numpy (u already tanh'ed)."""
    center_sum = y @ centers
    center_sum = np.where(
        center_sum == 0, np.broadcast_to(tie_center, u.shape), center_sum
    )
    hash_center = 2.0 * (center_sum > 0) - 1.0
    p, t = 0.5 * (u + 1), 0.5 * (hash_center + 1)
    bce = -np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))  # torch's BCELoss
    return bce + lam * np.mean((np.abs(u) - 1) ** 2)


@pytest.mark.parametrize("multi_label", [False, True])
def test_matches_numpy(multi_label):
    rng = np.random.default_rng(0)
    # Multi-label: Hadamard rows 0 and 1 tie on half the bits.
    centers, u, y = center_loss_batch(multi_label, [0, 1], rng)
    tie = rng.choice([-1.0, 1.0], size=16)
    loss = CSQHashLoss(centers, quantization_weight=0.3, tie_center=tie)
    expected = _numpy_csq_loss(y, u, centers, tie, 0.3)
    np.testing.assert_allclose(float(loss(y, u)), expected, rtol=1e-5)


def test_ties_of_multi_label_centers_take_the_tie_center():
    centers = hash_centers(4, 8).centers
    y = np.array([[1, 1, 0, 0], [0, 0, 1, 0]], "float32")
    tie = np.array([1, -1, 1, -1, 1, -1, 1, -1], "float32")
    targets = np.asarray(CSQHashLoss(centers, tie_center=tie).targets(y))
    total = y[0] @ centers
    assert (total == 0).any() and (total != 0).any()
    np.testing.assert_array_equal(targets[0], np.where(total == 0, tie, np.sign(total)))
    np.testing.assert_array_equal(targets[1], centers[2])
    # Drawn from the seed when not given: fixed per seed.
    a, b = CSQHashLoss(centers, seed=3), CSQHashLoss(centers, seed=3)
    np.testing.assert_array_equal(a.tie_center, b.tie_center)
    assert set(np.unique(a.tie_center)) <= {-1.0, 1.0}


def test_loss_is_smallest_at_own_center_and_finite_when_saturated():
    centers = hash_centers(4, 16).centers.astype("float32")
    loss = CSQHashLoss(centers, quantization_weight=0.0)
    y = keras.ops.one_hot(keras.ops.array([1]), 4)
    near, far = 0.9 * centers[1:2], 0.9 * centers[2:3]
    assert float(loss(y, near)) < float(loss(y, far))
    # A saturated code at the opposite corner: the epsilon keeps it finite.
    assert np.isfinite(float(loss(y, -centers[1:2])))


def test_config_round_trip():
    loss = CSQHashLoss(hash_centers(3, 8).centers, quantization_weight=0.5, seed=2)
    again = run_serialization_test(loss)
    np.testing.assert_array_equal(again.tie_center, loss.tie_center)


@pytest.mark.parametrize(
    "centers, kwargs, match",
    [
        (np.zeros((3, 8)), {}, "±1"),
        (np.ones(8), {}, "±1"),
        (np.ones((3, 8)), {"tie_center": np.ones(4)}, "tie_center"),
        (np.ones((3, 8)), {"tie_center": np.zeros(8)}, "tie_center"),
    ],
)
def test_bad_arguments(centers, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CSQHashLoss(centers, **kwargs)

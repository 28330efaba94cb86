import keras
import numpy as np
import pytest
from keras import ops

from keras_mlh.centers import hash_centers
from keras_mlh.losses.mlh_objective import (
    TERMS,
    MLHObjective,
    bit_balance,
    multi_hot,
    quantization_error,
)
from keras_mlh.models.modes import MODES, LossWeights

BITS, CLASSES, BATCH = 16, 4, 6


def _objective(mode="mlh", **weights):
    spec = MODES[mode]
    return MLHObjective(
        hash_centers(CLASSES, BITS).centers,
        spec.branches,
        spec.weights.replace(**weights),
    )


def _codes(seed):
    rng = np.random.default_rng(seed)
    return np.tanh(rng.normal(size=(BATCH, BITS))).astype("float32")


LABELS = multi_hot(np.array([0, 1, 1, 2, 3, 0]), CLASSES)


def _numpy_cosine_distance_gradient(u, target):
    """d/du of mean_j (1 - cos(u_j, target_j)), target held fixed."""
    nu = np.linalg.norm(u, axis=1, keepdims=True)
    nt = np.linalg.norm(target, axis=1, keepdims=True)
    dot = np.sum(u * target, axis=1, keepdims=True)
    return -(target / (nu * nt) - dot * u / (nu**3 * nt)) / len(u)


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize(
    "weights", [{}, {"center": 3.0, "pairwise": 0.5, "mutual": 0.25}]
)
def test_total_is_the_weighted_sum_of_the_terms(mode, weights):
    objective = _objective(mode, **weights)
    outputs = {"center": _codes(0), "pairwise": _codes(1), "csq": _codes(2)}
    total, terms = objective(outputs, LABELS)
    assert terms and tuple(terms) == objective.term_names
    expected = sum(objective.term_weight(n) * float(v) for n, v in terms.items())
    assert float(total) == pytest.approx(expected, rel=1e-6)
    assert all(float(v) > 0 for v in terms.values())


def test_modes_run_the_terms_their_branches_and_weights_allow():
    assert _objective("mlh").term_names == TERMS[:3]
    assert _objective("center").term_names == ("center_loss",)
    assert _objective("pairwise").term_names == ("pairwise_loss",)
    assert _objective("mlh_no_mutual").term_names == ("center_loss", "pairwise_loss")
    assert _objective("csq").term_names == ("csq_loss",)
    assert "csq_loss" not in _objective("mlh").term_names
    # A weight for a branch the mode lacks runs nothing.
    assert _objective("center", pairwise=1.0, mutual=1.0).term_names == ("center_loss",)


def test_mutual_term_moves_each_branch_towards_the_other_detached(gradients):
    objective = _objective(center=0.0, pairwise=0.0, mutual=1.0)
    u_c, u_p = _codes(0), _codes(1)

    def loss(c, p):
        return objective({"center": c, "pairwise": p}, LABELS)[0]

    grad_c, grad_p = gradients(loss, u_c, u_p)
    # Each branch gets exactly the gradient of 1 - cos(own, other) with the
    # other held fixed: no gradient through the target, both directions on.
    np.testing.assert_allclose(
        grad_c, _numpy_cosine_distance_gradient(u_c, u_p), rtol=1e-4, atol=1e-6
    )
    np.testing.assert_allclose(
        grad_p, _numpy_cosine_distance_gradient(u_p, u_c), rtol=1e-4, atol=1e-6
    )

    def cosine(a, b):
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        return np.sum(a * b / np.linalg.norm(b, axis=1, keepdims=True), axis=1)

    # A small step along -gradient brings each branch towards the other's
    # fixed codes, for every sample.
    assert np.all(cosine(u_c - 0.5 * grad_c, u_p) > cosine(u_c, u_p))
    assert np.all(cosine(u_p - 0.5 * grad_p, u_c) > cosine(u_p, u_c))


@pytest.mark.parametrize(
    "weights, silent_branch",
    [
        ({"center": 0.0, "mutual": 0.0}, "center"),
        ({"pairwise": 0.0, "mutual": 0.0}, "pairwise"),
    ],
)
def test_a_zero_weight_removes_the_terms_gradient(weights, silent_branch, gradients):
    objective = _objective(**weights)
    assert len(objective.term_names) == 1

    def loss(c, p):
        return objective({"center": c, "pairwise": p}, LABELS)[0]

    grad_c, grad_p = gradients(loss, _codes(0), _codes(1))
    silent, active = (grad_c, grad_p) if silent_branch == "center" else (grad_p, grad_c)
    assert np.all(silent == 0)
    assert np.abs(active).max() > 0


def test_pairwise_references_default_to_the_batch():
    objective = _objective("pairwise")
    u_p = _codes(1)
    _, alone = objective({"pairwise": u_p}, LABELS)
    references = {"codes": u_p, "labels": LABELS}
    _, explicit = objective({"pairwise": u_p}, LABELS, references)
    assert float(alone["pairwise_loss"]) == pytest.approx(
        float(explicit["pairwise_loss"]), rel=1e-6
    )


def test_loss_weights_are_checked():
    with pytest.raises(ValueError, match="Loss weights must be >= 0"):
        LossWeights(1.0, -1.0, 0.0)
    with pytest.raises(ValueError, match="Loss weights must be >= 0"):
        LossWeights(1.0, float("nan"), 0.0)


def test_bit_balance_is_one_for_balanced_and_zero_for_constant_bits():
    balanced = np.array([[0.5, -0.2], [-0.5, 0.3]], "float32")
    assert float(bit_balance(balanced)) == pytest.approx(1.0)
    # One bit always +1, the other always -1: both constant.
    constant = np.array([[0.5, -0.2], [0.7, -0.3]], "float32")
    assert float(bit_balance(constant)) == pytest.approx(0.0)
    # Exactly 0 counts as +1, as in the codes.
    assert float(bit_balance(np.zeros((2, 2), "float32"))) == pytest.approx(0.0)


def test_quantization_error():
    assert float(quantization_error(np.array([[1.0, -1.0]]))) == 0.0
    assert float(quantization_error(np.array([[0.0, 0.5]]))) == pytest.approx(0.625)


def test_multi_hot_accepts_ids_and_multi_hot():
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(multi_hot(np.array([[2], [0]]), 3)),
        [[0, 0, 1], [1, 0, 0]],
    )
    rows = np.array([[1, 1, 0]], "float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(multi_hot(rows, 3)), rows)
    assert ops.shape(multi_hot(np.array([0, 0]), 1)) == (2, 1)
    assert keras.backend.standardize_dtype(multi_hot(rows, 3).dtype) == "float32"

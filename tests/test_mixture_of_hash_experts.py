import keras
import numpy as np
import pytest
from helpers import run_layer_test, run_saving_test, run_serialization_test

from keras_mlh.layers import MixtureOfHashExperts


def _features(n=16, d=10, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype("float32")


def test_shapes_and_gates_are_distributions():
    moh = MixtureOfHashExperts(bits=32, num_experts=5, num_branches=2)
    codes, gates = run_layer_test(
        moh, _features(), ((16, 2, 32), (16, 2, 5)), training=True
    )
    np.testing.assert_allclose(gates.sum(-1), 1.0, atol=1e-6)
    assert np.all(np.abs(codes) < 1)


def test_mixture_equals_gated_sum_of_experts():
    moh = MixtureOfHashExperts(bits=8, num_experts=3, num_branches=2, batch_norm=False)
    x = _features(4, 6)
    codes, gates = (keras.ops.convert_to_numpy(t) for t in moh(x))
    experts = np.einsum("nd,deb->neb", x, moh.expert_kernel.numpy())
    experts += moh.expert_bias.numpy()
    expected = np.tanh(np.einsum("nre,neb->nrb", gates, experts))
    np.testing.assert_allclose(codes, expected, atol=1e-5)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_top_k_keeps_k_experts_per_gate(top_k):
    moh = MixtureOfHashExperts(bits=8, num_experts=4, top_k=top_k)
    _, gates = moh(_features())
    nonzero = (keras.ops.convert_to_numpy(gates) > 1e-9).sum(-1)
    assert np.all(nonzero == top_k)


def test_config_and_saving(tmp_path):
    moh = MixtureOfHashExperts(bits=16, num_experts=3, top_k=2)
    run_serialization_test(moh)
    run_saving_test(moh, _features(6, 5), tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"top_k": 5, "num_experts": 4}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"num_experts": 0}, "num_experts"),
        ({"bits": 10}, "multiple of 8"),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"bits": 8, **kwargs}
    with pytest.raises(ValueError, match=match):
        MixtureOfHashExperts(**kwargs)


@pytest.mark.parametrize("top_k", [1, 2])
def test_top_k_keeps_the_largest_gate_logits(top_k):
    moh = MixtureOfHashExperts(bits=8, num_experts=4, top_k=top_k)
    x = _features()
    _, gates = moh(x)
    logits = np.einsum("nd,dre->nre", x, moh.gate_kernel.numpy())
    logits += moh.gate_bias.numpy()
    largest = np.argsort(-logits, axis=-1)[..., :top_k]
    kept = np.sort(
        np.argsort(-keras.ops.convert_to_numpy(gates), axis=-1)[..., :top_k], axis=-1
    )
    np.testing.assert_array_equal(kept, np.sort(largest, axis=-1))
    assert np.all(
        np.take_along_axis(keras.ops.convert_to_numpy(gates), largest, -1) > 1e-9
    )

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


def test_regularizers_are_added_only_when_enabled_and_in_training():
    x = _features()
    plain = MixtureOfHashExperts(bits=8)
    plain(x, training=True)
    assert plain.losses == []
    moh = MixtureOfHashExperts(
        bits=8, gate_balance_weight=1.0, expert_diversity_weight=1.0
    )
    moh(x, training=False)
    assert moh.losses == []
    moh(x, training=True)
    values = [float(v) for v in moh.losses]
    assert len(values) == 2 and all(v >= 0 for v in values)


def test_gate_balance_is_zero_for_uniform_usage():
    moh = MixtureOfHashExperts(bits=8, num_experts=4, gate_balance_weight=1.0)
    uniform = np.full((8, 2, 4), 0.25, "float32")
    assert abs(float(moh._gate_imbalance(uniform))) < 1e-6
    one_expert = np.zeros((8, 2, 4), "float32")
    one_expert[..., 0] = 1
    assert float(moh._gate_imbalance(one_expert)) == pytest.approx(3.0)


def test_config_and_saving(tmp_path):
    moh = MixtureOfHashExperts(bits=16, num_experts=3, top_k=2, gate_balance_weight=0.1)
    run_serialization_test(moh)
    run_saving_test(moh, _features(6, 5), tmp_path)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"top_k": 5, "num_experts": 4}, "top_k"),
        ({"top_k": 0}, "top_k"),
        ({"num_experts": 0}, "num_experts"),
        ({"gate_balance_weight": -1.0}, "gate_balance_weight"),
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


def test_expert_diversity_ignores_each_experts_similarity_to_itself():
    moh = MixtureOfHashExperts(bits=8, num_experts=2, expert_diversity_weight=1.0)
    moh.build((None, 4))
    kernel = np.zeros((4, 2, 8), "float32")
    kernel[:2, 0] = 1.0  # expert 0 uses features 0-1, expert 1 features 2-3:
    kernel[2:, 1] = 1.0  # orthogonal experts are perfectly diverse.
    moh.expert_kernel.assign(kernel)
    assert float(moh._expert_similarity()) == pytest.approx(0.0, abs=1e-6)
    kernel[:, 1] = kernel[:, 0]  # two identical experts
    moh.expert_kernel.assign(kernel)
    assert float(moh._expert_similarity()) == pytest.approx(1.0, abs=1e-5)

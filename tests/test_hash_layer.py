import keras
import numpy as np
import pytest
from helpers import run_layer_test, run_saving_test, run_serialization_test

from keras_mlh.layers import HashLayer


def test_output_shape_and_range():
    layer = HashLayer(bits=16, num_branches=2)
    x = np.random.default_rng(0).normal(size=(5, 12)).astype("float32")
    codes = run_layer_test(layer, x, (5, 2, 16), training=True)
    assert np.all(np.abs(codes) < 1)
    assert layer.compute_output_shape((None, 12)) == (None, 2, 16)


def test_branches_are_independent():
    layer = HashLayer(bits=8, num_branches=2, batch_norm=False)
    x = np.random.default_rng(1).normal(size=(3, 4)).astype("float32")
    layer(x)
    kernel = layer.kernel.numpy()
    kernel[:, 1] = 0
    layer.kernel.assign(kernel)
    codes = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(codes[:, 1], 0, atol=1e-7)
    assert np.abs(codes[:, 0]).sum() > 0


def test_config_and_saving(tmp_path):
    layer = HashLayer(bits=24, num_branches=3, batch_norm=False)
    run_serialization_test(layer)
    x = np.random.default_rng(2).normal(size=(4, 6)).astype("f4")
    run_saving_test(layer, x, tmp_path)


@pytest.mark.parametrize("bits", [0, 12, -8, 16.0, None])
def test_bits_must_be_positive_multiple_of_8(bits):
    with pytest.raises(ValueError, match="positive multiple of 8"):
        HashLayer(bits=bits)


def test_num_branches_must_be_positive():
    with pytest.raises(ValueError, match="num_branches"):
        HashLayer(bits=8, num_branches=0)

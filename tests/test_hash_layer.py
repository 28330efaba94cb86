import keras
import numpy as np
import pytest

from keras_mlh.layers import HashLayer


def test_output_shape_and_range():
    layer = HashLayer(bits=16, num_branches=2)
    codes = keras.ops.convert_to_numpy(
        layer(np.random.default_rng(0).normal(size=(5, 12)), training=True)
    )
    assert codes.shape == (5, 2, 16)
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


def test_config_and_saving(saving_round_trip):
    layer = HashLayer(bits=24, num_branches=3, batch_norm=False)
    assert HashLayer.from_config(layer.get_config()).get_config() == layer.get_config()
    saving_round_trip(layer, np.random.default_rng(2).normal(size=(4, 6)).astype("f4"))


@pytest.mark.parametrize("bits", [0, 12, -8, 16.0, None])
def test_bits_must_be_positive_multiple_of_8(bits):
    with pytest.raises(ValueError, match="positive multiple of 8"):
        HashLayer(bits=bits)


def test_num_branches_must_be_positive():
    with pytest.raises(ValueError, match="num_branches"):
        HashLayer(bits=8, num_branches=0)

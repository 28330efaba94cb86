import keras
import numpy as np
import pytest

import keras_mlh


def _images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 28, 28, 1)).astype("float32")


# keras-cv's layers compute with TensorFlow ops: PyTorch runs them eagerly,
# JAX's jit-compiled train step cannot trace them.
@pytest.mark.skipif(
    keras.backend.backend() == "jax", reason="keras-cv layers do not trace under JAX"
)
def test_keras_cv_layer_trains_and_saves_inside_mlh(tmp_path):
    # keras-cv layers go into MLH(augmentation=[...]) as they are.
    keras_cv = pytest.importorskip("keras_cv")
    cutout = keras_cv.layers.RandomCutout(height_factor=0.3, width_factor=0.3)
    x = _images()
    assert np.abs(np.asarray(cutout(x, training=True)) - x).sum() > 0
    model = keras_mlh.MLH(num_classes=3, bits=8, augmentation=[cutout])
    model.compile()
    model.fit(x, np.arange(6) % 3, epochs=1, verbose=0)
    path = str(tmp_path / "cv.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_array_equal(again.encode(x), model.encode(x))

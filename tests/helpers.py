"""Checks shared by the tests, in the manner of keras-hub's `TestCase`.

`run_layer_test` calls a layer and checks the shape and dtype of what it
returns, `run_serialization_test` the `get_config`/`from_config` round trip
(and that Keras finds the class by its registered name), `run_saving_test`
a `.keras` save and reload, `keras_mlh` and `error_line` a command run as
a user runs it and its one-line error, `check_onnx_graph` an exported ONNX
graph's contract, and `import_blocker` is the code that makes a fresh Python
refuse to import some modules.

Keras is imported by the checks that use it: `import_blocker` serves tests
of the Keras-free parts too.
"""

import json
import os
import subprocess
import sys

import numpy as np


def run_layer_test(
    layer, inputs, expected_output_shape, expected_output_dtype="float32", **call
):
    """Calls `layer` on `inputs` and checks its outputs' shapes and dtypes.

    Args:
        layer: the layer.
        inputs: its input; a tuple is passed as positional arguments
            (`layer(codes, labels)`).
        expected_output_shape: a shape tuple, or a structure of them (a
            tuple of shapes for a tuple output, a dict for a dict output).
        expected_output_dtype: the dtype of every output.
        **call: keyword arguments of the call (`training=True`).

    Returns:
        The outputs, as numpy arrays in the layer's structure.
    """
    import keras

    outputs = keras.tree.map_structure(
        keras.ops.convert_to_numpy,
        layer(*inputs, **call) if isinstance(inputs, tuple) else layer(inputs, **call),
    )
    shapes = keras.tree.map_structure(lambda output: output.shape, outputs)
    assert _same_shapes(shapes, expected_output_shape), (
        shapes,
        expected_output_shape,
    )
    for output in keras.tree.flatten(outputs):
        assert output.dtype == np.dtype(expected_output_dtype), output.dtype
    return outputs


def _same_shapes(actual, expected):
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            _same_shapes(actual[key], expected[key]) for key in expected
        )
    if expected and isinstance(expected[0], (tuple, list)):
        return len(actual) == len(expected) and all(
            _same_shapes(a, e) for a, e in zip(actual, expected, strict=True)
        )
    return tuple(actual) == tuple(expected)


def run_serialization_test(instance):
    """`from_config(get_config())` rebuilds `instance` with the same config,
    and so does Keras from its serialized form (the class is registered).

    Args:
        instance: a layer, loss or other Keras-serializable object.

    Returns:
        The instance rebuilt with `from_config`.
    """
    import keras

    config = instance.get_config()
    again = type(instance).from_config(config)
    assert again.get_config() == config
    revived = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(instance)
    )
    assert type(revived) is type(instance)
    assert revived.get_config() == config
    return again


def run_saving_test(layer, inputs, folder):
    """Saves `layer` inside a functional model to `.keras`, reloads it, and
    checks that the reloaded model gives the same outputs on `inputs`.

    Args:
        layer: the layer.
        inputs: a batch for it (its shape gives the model's input).
        folder: where to write the file (a `tmp_path`).

    Returns:
        The reloaded model.
    """
    import keras

    x = keras.Input(shape=inputs.shape[1:])
    model = keras.Model(x, layer(x))
    expected = model.predict(inputs, verbose=0)
    path = str(folder / "layer.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    actual = again.predict(inputs, verbose=0)
    for e, a in zip(
        keras.tree.flatten(expected), keras.tree.flatten(actual), strict=True
    ):
        np.testing.assert_allclose(a, e, atol=1e-6)
    return again


def run_python(code, *args, backend=None, timeout=120):
    """Runs `code` in a fresh Python and checks that it exits 0.

    Args:
        code: the script (its `assert`s are the checks).
        *args: its command-line arguments (`sys.argv[1:]`), as strings.
        backend: the `KERAS_BACKEND` it runs on (default: this environment's).
        timeout: seconds it may take.

    Returns:
        The `subprocess.CompletedProcess`, with text `stdout` and `stderr`.
    """
    env = {**os.environ, "KERAS_BACKEND": backend} if backend else None
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def keras_mlh(*args, cwd, expect=0, timeout=600, **run_kwargs):
    """Runs `python -m keras_mlh.cli ARGS` as a user would and checks its exit code
    (`expect=None`: any code); `run_kwargs` go to `subprocess.run`.

    The environment is this one less the test session's TensorFlow logging
    settings: TensorFlow's own log lines stay on stderr, as a user sees them.

    Returns:
        The `subprocess.CompletedProcess`, with text `stdout` and `stderr`.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")
    }
    result = subprocess.run(
        [sys.executable, "-m", "keras_mlh.cli", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        **run_kwargs,
    )
    assert expect is None or result.returncode == expect, (
        f"exit {result.returncode} != {expect}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )
    return result


def error_line(result):
    """The command's error message: the last stderr line, with no traceback.

    TensorFlow may log a few lines of its own when it is imported; the
    command's message is the single line after them.
    """
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines, "nothing on stderr"
    assert lines[-1].startswith("keras-mlh: error: "), lines[-1]
    return lines[-1]


def center_loss_batch(multi_label, first_classes, rng):
    """A batch for the hash-center losses: six 16-bit centers, five codes, labels.

    Args:
        multi_label: multi-hot labels (some rows with several classes or
            none), else one-hot.
        first_classes: the classes of the first multi-hot row, its only ones.
        rng: a `np.random.Generator` (drawn from: codes, then labels).

    Returns:
        `(centers, u, y)`: float64 `hash_centers(6, 16)`, tanh codes `(5, 16)`
        and labels `(5, 6)`.
    """
    from keras_mlh.centers import hash_centers

    centers = hash_centers(6, 16).centers.astype(np.float64)
    u = np.tanh(rng.normal(size=(5, 16)))
    if multi_label:
        y = (rng.random((5, 6)) < 0.4).astype(np.float64)
        y[0] = 0
        y[0, first_classes] = 1
    else:
        y = np.eye(6)[rng.integers(0, 6, 5)]
    return centers, u, y


def import_blocker(modules):
    """Python code that, run first in a fresh interpreter, makes importing
    any of `modules` (top-level names) raise `ImportError`.

    Args:
        modules: top-level module names, e.g. `("tensorflow", "keras")`.

    Returns:
        The code, to put before a subprocess's script.
    """
    return (
        "import sys\n"
        "class _Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(modules)!r}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, _Block())\n"
    )


def check_onnx_graph(path, input_shape, bits, opset):
    """The exported ONNX graph's contract with the runtime: one `images` input,
    a named `batch` dimension, the opset, and the encoder's metadata."""
    import onnx
    import onnxruntime as ort

    proto = onnx.load(path)
    assert {o.domain: o.version for o in proto.opset_import}[""] == opset
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for v in [*proto.graph.input, *proto.graph.output]
    }
    assert dims == {
        "images": ["batch", *input_shape],
        "embedding": ["batch", bits],
        "codes": ["batch", bits],
        "packed": ["batch", bits // 8],
    }
    assert len(proto.graph.input) == 1  # no constant became an input
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    props = session.get_modelmeta().custom_metadata_map
    assert props["format"] == "keras-mlh-encoder"
    assert json.loads(props["bits"]) == bits

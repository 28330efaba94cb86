"""The encoder's files, written by `Model.export`: under TensorFlow, in a
subprocess, for a format it cannot write on this backend (`KERAS_FORMATS`)."""

import json
import logging
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np

from keras_mlh_runtime import contract
from keras_mlh_runtime.contract import INPUT_NAME, OUTPUT_NAMES
from keras_mlh_runtime.errors import first_line

MIN_OPSET = 17
# What `Model.export` writes validly per backend (Keras 3.15): jax2onnx 0.17's
# 4-D MaxPool fails in onnxruntime; torch's SavedModel needs torch_xla.
KERAS_FORMATS = {
    "tensorflow": ("saved_model", "onnx"),
    "jax": ("saved_model",),
    "torch": ("onnx",),
}
# `python -c _WORKER MODEL.keras FOLDER OPSET FORMAT...`, run under TensorFlow.
_WORKER = """import sys
from keras_mlh.export.artifacts import keras_export
from keras_mlh.models import load_model
path, folder, opset, *formats = sys.argv[1:]
keras_export(load_model(path), folder, formats, int(opset))"""


def keras_export(model, folder, formats, opset):
    """Writes `formats` of the encoder, `codes` and `packed` (`BIT_ORDER`) out."""
    import keras
    from keras import ops

    encoder = model.build_encoder()
    images = keras.Input(encoder.input_shape[1:], dtype="float32", name=INPUT_NAME)
    embedding = encoder(images)
    signs = ops.cast(ops.greater_equal(embedding, 0), "float32")  # sign(0) == 0
    weights = (2.0 ** np.arange(8)).astype(np.float32)
    packed = ops.sum(ops.reshape(signs, (-1, model.bits // 8, 8)) * weights, axis=-1)
    outputs = {
        "embedding": embedding,
        "codes": ops.cast(signs * 2.0 - 1.0, "int8"),
        "packed": ops.cast(packed, "uint8"),
    }
    exported = keras.Model(images, outputs, name="mlh_export")
    spec = keras.InputSpec(shape=exported.input_shape, dtype="float32", name=INPUT_NAME)
    options = {"input_signature": [spec], "verbose": False}
    if "saved_model" in formats:
        path = os.path.join(folder, contract.SAVED_MODEL_DIR)
        exported.export(path, format="tf_saved_model", **options)
    if "onnx" in formats:
        logging.getLogger("tf2onnx").setLevel(logging.WARNING)  # its INFO lines
        try:
            with warnings.catch_warnings():
                # Notes on traced constants: the validation checks the file.
                warnings.simplefilter("ignore")
                path = os.path.join(folder, contract.ONNX_FILE)
                exported.export(path, format="onnx", opset_version=opset, **options)
        except Exception as error:  # the converters raise many types
            raise ValueError(
                f"Keras could not convert the encoder to ONNX opset {opset}: "
                f"{first_line(error)}. Try another `opset`, or export "
                "formats=('saved_model',) only."
            ) from None


def export_under_tensorflow(model, folder, formats, opset):
    """Writes `formats` with `keras_export` in a TensorFlow subprocess."""
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        model_path = os.path.join(scratch, "model.keras")
        model.save(model_path)
        argv = [model_path, folder, str(opset or MIN_OPSET), *formats]
        env = {"TF_CPP_MIN_LOG_LEVEL": "2", **os.environ, "KERAS_BACKEND": "tensorflow"}
        command = [sys.executable, "-c", _WORKER, *argv]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        # The worker's uncaught exception is the last line of its stderr.
        last = (result.stderr.strip().splitlines() or [""])[-1]
        if last.startswith("ValueError: "):
            raise ValueError(last.removeprefix("ValueError: "))
        raise RuntimeError(
            f"The TensorFlow export of {formats} failed (exit status "
            f"{result.returncode}): {result.stderr[-2000:]}"
        )


def finish_onnx(path, metadata):
    """Names the outputs, their widths and the batch dimension; adds `metadata`."""
    import onnx

    proto = onnx.load(path)
    graph, bits = proto.graph, metadata["bits"]
    # Keras flattens the outputs in key order: the graph's are the sorted names.
    names = dict(zip([o.name for o in graph.output], sorted(OUTPUT_NAMES), strict=True))
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    widths = {"embedding": bits, "codes": bits, "packed": bits // 8}
    for value in graph.output:
        value.name = names[value.name]
        value.type.tensor_type.shape.dim[1].dim_value = widths[value.name]
    for value in [*graph.input, *graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    props = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, path)

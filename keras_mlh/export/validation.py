"""Checks an export folder against the Keras model it came from.

Each export runs on sample images (batches of one and of all images) and must
match the Keras encoder on the model's own backend: `embedding` within `atol`,
>= 99.9% equal bits, `packed` the packed `codes`, the contract's dtypes.
"""

import os

import numpy as np

from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.contract import (
    INPUT_NAME,
    ONNX_FILE,
    OUTPUT_DTYPES,
    OUTPUT_NAMES,
    SAVED_MODEL_DIR,
)
from keras_mlh_runtime.errors import first_line

MIN_BIT_AGREEMENT = 0.999


class ExportValidationError(ValueError):
    """An exported encoder disagrees with the Keras model it came from."""


def keras_embedding(encoder, images):
    """The Keras encoder's `embedding`: the reference every export must match."""
    return np.asarray(encoder.predict(images, verbose=0), dtype=np.float32)


def check_export(encoder, folder, formats, images, atol):
    """`metadata.json`'s `validation` of the exports in `folder`, or raises
    `ExportValidationError` (`encoder`: `MLH.build_encoder()`)."""
    batches = [images[:1], images]  # two batch sizes
    reference = np.concatenate([keras_embedding(encoder, b) for b in batches])
    results = {
        "num_images": int(len(images)),
        "atol": atol,
        "min_bit_agreement": MIN_BIT_AGREEMENT,
    }
    runners = {"saved_model": _saved_model_runner, "onnx": _onnx_runner}
    for name in formats:
        run = runners[name](folder, images.shape[1:])
        outputs = [run(batch) for batch in batches]
        merged = {k: np.concatenate([o[k] for o in outputs]) for k in OUTPUT_NAMES}
        results[name] = _compare(name, merged, reference, atol)
    return results


def _saved_model_runner(folder, image_shape):
    import tensorflow as tf

    model = tf.saved_model.load(os.path.join(folder, SAVED_MODEL_DIR))
    signature = model.signatures["serving_default"]

    def run(images):
        outputs = signature(**{INPUT_NAME: tf.constant(images)})
        return {k: outputs[k].numpy() for k in OUTPUT_NAMES}

    return run


def _onnx_runner(folder, image_shape):
    import onnx
    import onnxruntime as ort

    path = os.path.join(folder, ONNX_FILE)
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:  # onnx.checker.ValidationError and others
        raise ExportValidationError(
            f"The ONNX export fails onnx.checker: {first_line(error)}"
        ) from None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    expected = [(INPUT_NAME, "tensor(float)", ["batch", *image_shape])]
    if inputs != expected:
        raise ExportValidationError(
            f"The ONNX graph has inputs {inputs}; expected {expected} (did a "
            "captured constant become an input?)."
        )

    def run(images):
        values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    return run


def _compare(name, outputs, reference, atol):
    """One export's entry of `validation`, or raises `ExportValidationError`."""
    embedding, codes, packed = (outputs[k] for k in OUTPUT_NAMES)
    dtypes = {k: str(outputs[k].dtype) for k in OUTPUT_NAMES}
    if dtypes != OUTPUT_DTYPES or embedding.shape != reference.shape:
        raise ExportValidationError(
            f"The {name} export gives dtypes {dtypes} and embedding shape "
            f"{embedding.shape}; expected {OUTPUT_DTYPES} and {reference.shape}."
        )
    try:
        packed_ok = bool(np.array_equal(packed, pack_codes(codes)))
    except ValueError:  # codes that are not all ±1
        packed_ok = False
    diff = float(np.max(np.abs(embedding - reference)))
    agreement = float(np.mean(codes == np.where(reference >= 0, 1, -1)))
    if not (diff <= atol and agreement >= MIN_BIT_AGREEMENT and packed_ok):  # NaN too
        raise ExportValidationError(
            f"The {name} export disagrees with the Keras model: embedding differs "
            f"by {diff:.3g} (atol={atol:g}), {100 * agreement:.3f}% of bits agree "
            f"(need {100 * MIN_BIT_AGREEMENT:g}%), `packed` is "
            f"{'' if packed_ok else 'not '}the packed `codes`. Nothing was written "
            "to the output folder; re-export, or pass a larger `atol` if the "
            "differences are float round-off."
        )
    return {
        "max_abs_diff": diff,
        "bit_agreement": agreement,
        "packed_matches_codes": packed_ok,
    }

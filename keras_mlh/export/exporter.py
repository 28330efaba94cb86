"""Export an MLH encoder (`artifacts`), renamed into place once each format
matches the Keras encoder on sample images (batches of one and of all)."""

import math
import numbers
import os

import numpy as np

from keras_mlh import files
from keras_mlh.export import artifacts
from keras_mlh.version import __version__
from keras_mlh_runtime import contract
from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.contract import INPUT_NAME, OUTPUT_DTYPES, OUTPUT_NAMES
from keras_mlh_runtime.errors import check_int_in_range, first_line, validate_images

# The share of an export's bits that must equal the Keras model's.
MIN_BIT_AGREEMENT = 0.999


class ExportValidationError(ValueError):
    """An exported encoder disagrees with the Keras model it came from."""


def export_encoder(
    model_or_path,
    out_dir,
    formats=contract.FORMATS,
    opset=artifacts.MIN_OPSET,
    atol=1e-4,
    validate=True,
    sample_images=None,
    overwrite=False,
    resize_to=None,
    sample_key=None,
    max_samples=256,
    overwrite_flag="overwrite=True",
):
    """Exports the encoder of a trained MLH model, validated against Keras.

    Writes `saved_model/`, `model.onnx` and `metadata.json` into `out_dir`
    (`keras_mlh_runtime.contract`); an `ExportValidationError` leaves it as it was.

    Args:
        model_or_path: a built `keras_mlh.MLH` or the path of its `.keras`.
        formats: `"saved_model"`, `"onnx"` or a sequence of them.
        opset: ONNX opset, 17 or 18 (tf2onnx's newest).
        atol: largest allowed absolute difference of `embedding` to Keras.
        sample_images: pixels, or an `.npy`, `.npz` (array `sample_key`) or
            folder (its first `max_samples`); default 64 seeded random images.
        overwrite: replace an earlier export (never a folder of other files).
        resize_to: the resize of a resize-then-crop recipe, for the runtime.
        overwrite_flag: how the caller spells `overwrite`, for messages.

    Returns:
        The metadata written, with `validation[format]`'s `max_abs_diff`,
        `bit_agreement` and `packed_matches_codes`.

    Example:
    >>> export_encoder(model, "encoder")["validation"]["onnx"]["bit_agreement"]  # doctest: +SKIP
    1.0
    """
    source, samples = (
        os.fspath(v) if isinstance(v, (str, os.PathLike)) else None
        for v in (model_or_path, sample_images)
    )
    out_dir = files.check_output(
        out_dir,
        inputs=[source, samples],
        overwrite=overwrite,
        kind="folder",
        marker=contract.METADATA_FILE,
        what="export",
        overwrite_flag=overwrite_flag,
    )
    if source is not None:
        files.check_model_file(source)  # before the slow imports below
    if samples is not None and not os.path.exists(samples):
        raise ValueError(f"Sample images not found: {samples!r}.")
    formats, opset, atol = _check_arguments(formats, opset, atol)
    from keras_mlh.models import MLH, load_model

    model = model_or_path if source is None else load_model(source)
    if not isinstance(model, MLH):
        raise ValueError(
            "`model_or_path` must be a keras_mlh.MLH model or the path of its "
            f".keras file. Received: {type(model).__name__}"
        )
    shape = model.image_shape
    if shape is None or any(d is None for d in shape):
        raise ValueError(
            f"The model's image shape must be fully known to export it; got {shape}. "
            "Train the model, or call model.build((None, height, width, channels))."
        )
    shape = tuple(int(d) for d in shape)
    resize_to = contract.check_resize_to(resize_to, shape)
    images = None
    if validate:
        images = _sample(sample_images, shape, sample_key, max_samples, source)
    return _write(model, out_dir, formats, opset, atol, images, resize_to)


def _write(model, out_dir, formats, opset, atol, images, resize_to):
    """Writes the export, validates it on `images` (unless `None`), moves it."""
    import keras

    metadata = contract.encoder_metadata(
        model.bits,
        model.image_shape,
        formats,
        keras_mlh_version=__version__,
        trained_backend=keras.backend.backend(),
        **{k: getattr(model, k) for k in ("num_classes", "mode", "retrieval_branch")},
        **{k: getattr(model, k) for k in ("input_scale", "input_offset")},
        opset=opset,
        resize_to=None if resize_to is None else list(resize_to),
    )
    with files.atomic_folder(out_dir) as work:
        here = artifacts.KERAS_FORMATS.get(keras.backend.backend(), ())
        artifacts.keras_export(model, work, [f for f in formats if f in here], opset)
        if others := [f for f in formats if f not in here]:
            artifacts.export_under_tensorflow(model, work, others, opset)
        if "onnx" in formats:
            artifacts.finish_onnx(os.path.join(work, contract.ONNX_FILE), metadata)
        metadata["validation"] = None
        if images is not None:
            encoder = model.build_encoder()
            metadata["validation"] = _validate(encoder, work, formats, images, atol)
        if "onnx" in formats:
            # Lets the runtime refuse a model.onnx of another export.
            with open(os.path.join(work, contract.ONNX_FILE), "rb") as file:
                metadata[contract.ONNX_SHA256] = contract.fingerprint(file.read())
        files.write_json(metadata, os.path.join(work, contract.METADATA_FILE))
    return metadata


def _check_arguments(formats, opset, atol):
    """`formats` as a tuple, `opset` (for ONNX) and `atol`, checked."""
    formats = (formats,) if isinstance(formats, str) else formats
    try:
        formats = tuple(dict.fromkeys(formats))
    except TypeError:
        formats = None
    if not formats or any(f not in contract.FORMATS for f in formats):
        raise ValueError(
            f"`formats` must be one of {contract.FORMATS} or a non-empty list of "
            f"them. Received: formats={formats!r}"
        )
    if "onnx" in formats:
        import tf2onnx.constants

        newest = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
        why = " (the newest tf2onnx converts to)"
        opset = check_int_in_range("opset", opset, artifacts.MIN_OPSET, newest, why)
    number = isinstance(atol, numbers.Real) and not isinstance(atol, bool)
    if not (number and 0 < atol < math.inf):
        raise ValueError(f"`atol` must be a positive number. Received: atol={atol!r}")
    return formats, opset if "onnx" in formats else None, float(atol)


def _sample(sample_images, image_shape, key, max_samples, model_path):
    if sample_images is None:
        shape = (64, *image_shape)
        return np.random.default_rng(0).integers(0, 256, shape).astype(np.float32)
    if isinstance(sample_images, (str, os.PathLike)):
        from keras_mlh.encoding import open_images

        path = os.fspath(sample_images)
        found = open_images(path, image_shape, key, "Sample images", model_path)
        sample_images = next(found.chunks(max_samples))  # the first ones
    images = validate_images(sample_images, image_shape, name="sample_images")
    return images.astype(np.float32)


def keras_embedding(encoder, images):
    """The Keras encoder's `embedding`: the reference every export must match."""
    return np.asarray(encoder.predict(images, verbose=0), dtype=np.float32)


def _validate(encoder, folder, formats, images, atol):
    """`metadata.json`'s `validation`, or raises `ExportValidationError`."""
    batches = [images[:1], images]  # two batch sizes
    reference = np.concatenate([keras_embedding(encoder, b) for b in batches])
    results = dict(
        num_images=len(images), atol=atol, min_bit_agreement=MIN_BIT_AGREEMENT
    )
    for name in formats:
        run = _run_onnx if name == "onnx" else _run_saved_model
        per_name = zip(*run(folder, batches), strict=True)  # the batches' arrays
        merged = dict(zip(OUTPUT_NAMES, map(np.concatenate, per_name), strict=True))
        results[name] = _compare(name, merged, reference, atol)
    return results


def _run_saved_model(folder, batches):
    import tensorflow as tf

    model = tf.saved_model.load(os.path.join(folder, contract.SAVED_MODEL_DIR))
    signature = model.signatures["serving_default"]
    outputs = [signature(**{INPUT_NAME: tf.constant(b)}) for b in batches]
    return [[o[k].numpy() for k in OUTPUT_NAMES] for o in outputs]


def _run_onnx(folder, batches):
    import onnx
    import onnxruntime as ort

    path = os.path.join(folder, contract.ONNX_FILE)
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as error:  # onnx.checker.ValidationError and others
        raise ExportValidationError(
            f"The ONNX export fails onnx.checker: {first_line(error)}"
        ) from None
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    inputs = [(i.name, i.type, i.shape) for i in session.get_inputs()]
    expected = [(INPUT_NAME, "tensor(float)", ["batch", *batches[0].shape[1:]])]
    if inputs != expected:
        raise ExportValidationError(
            f"The ONNX graph has inputs {inputs}; expected {expected} (did a "
            "captured constant become an input?)."
        )
    return [session.run(list(OUTPUT_NAMES), {INPUT_NAME: b}) for b in batches]


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
            f"The {name} export disagrees with the Keras model: embedding off by "
            f"{diff:.3g} (atol={atol:g}), {100 * agreement:.3f}% of bits agree "
            f"(need {100 * MIN_BIT_AGREEMENT:g}%), packed matches codes: "
            f"{packed_ok}. Nothing was written; re-export, or pass a larger "
            "`atol` for float round-off."
        )
    return dict(
        max_abs_diff=diff, bit_agreement=agreement, packed_matches_codes=packed_ok
    )

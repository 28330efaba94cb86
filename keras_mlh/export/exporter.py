"""Export a trained MLH model as a deployable encoder: SavedModel and ONNX.

The encoder is preprocessing + backbone + hash head + the retrieval branch,
with three outputs: `embedding` (float32 continuous code, tanh range),
`codes` (int8 ±1, `where(embedding >= 0, 1, -1)`) and `packed` (uint8,
`bits / 8` bytes per code, in `keras_mlh_runtime.codes.BIT_ORDER`, the order of the
faiss index). Its input `images` is float32 raw pixels
`(batch, height, width, channels)` in [0, 255]; the TensorFlow-free runtime
(`keras_mlh_runtime.HashEncoder`) casts uint8 images.

Keras's own exporter (`Model.export`) writes both formats, on the model's
backend where it can (`KERAS_FORMATS`), else under TensorFlow in a
subprocess. Everything is written to a temporary folder beside `out_dir`,
validated against the Keras model, and only then renamed into place: a
failed export never leaves a folder that looks like a good one.
"""

import math
import os

import numpy as np

from keras_mlh import files
from keras_mlh.export.artifacts import MIN_OPSET, write_artifacts
from keras_mlh.export.validation import check_export
from keras_mlh.version import __version__

# The export contract (file names, input, outputs, dtypes, metadata schema)
# is the runtime's, which reads what this writes.
from keras_mlh_runtime.contract import (
    FORMATS,
    METADATA_FILE,
    ONNX_FILE,
    ONNX_SHA256,
    check_resize_to,
    encoder_metadata,
    fingerprint,
)
from keras_mlh_runtime.errors import check_int_in_range, validate_images

__all__ = ["check_out_dir", "export_encoder", "load_mlh", "write_encoder"]
NUM_RANDOM_IMAGES = 64
TEMP_PREFIX = files.TEMP_PREFIX


def load_mlh(path):
    """`keras_mlh.models.load_model` under its older name.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras_mlh.MLH` model.
    """
    from keras_mlh.models import load_model

    return load_model(path)


def export_encoder(
    model_or_path,
    out_dir,
    formats=FORMATS,
    opset=MIN_OPSET,
    atol=1e-4,
    validate=True,
    sample_images=None,
    overwrite=False,
    resize_to=None,
):
    """Exports the encoder of a trained MLH model and validates it.

    Writes `out_dir/saved_model/` (serving signature `serving_default`),
    `out_dir/model.onnx` (batch dimension named `batch`) and
    `out_dir/metadata.json`. Both exports take `images`, float32 raw pixels
    `(batch, *model.image_shape)` in [0, 255], and give `embedding` (float32
    `(batch, bits)`), `codes` (int8 ±1) and `packed` (uint8 `(batch, bits / 8)`,
    the bit order of `keras_mlh_runtime.codes.pack_codes` and `HammingIndex`).
    `metadata.json` records the sha256 of `model.onnx` (`onnx_sha256`), which
    `HashEncoder.load` checks before parsing the file.

    Args:
        model_or_path: a built `keras_mlh.MLH` or the path of its `.keras`
            file.
        out_dir: folder to create.
        formats: `"saved_model"`, `"onnx"` or a sequence of them.
        opset: ONNX opset, 17 or 18 (tf2onnx's newest).
        atol: largest allowed absolute difference of `embedding` against
            Keras, > 0.
        validate: run sample images through Keras, the reloaded SavedModel
            and onnxruntime (batches of 1 and of all images) and fail unless
            every export agrees: `embedding` within `atol`, >= 99.9% equal
            bits, `packed` equal to the packed `codes`.
        sample_images: images for validation, `(n, *image_shape)` raw pixels
            (real ones are best); default 64 seeded random images.
        overwrite: replace an existing non-empty `out_dir` (only after the
            new export has passed validation).
        resize_to: for a model trained on image files with a resize-then-crop
            recipe (`from_list_files(..., resize_to=(256, 256))`), that size;
            recorded in `metadata.json` so that `HashEncoder.encode_files`
            and the Beam encoder resize files to it and take the central crop,
            as evaluation does. `None`: files are resized straight to the
            input size.

    Returns:
        The metadata written to `metadata.json`, validation results included
        (`metadata["validation"][format]` holds `max_abs_diff`,
        `bit_agreement` and `packed_matches_codes`).

    Raises:
        ValueError: bad arguments, a missing or non-MLH model, an existing
            non-empty folder, an unwritable location.
        ExportValidationError: an export disagrees with Keras; nothing is
            written to `out_dir` then.

    Example:
    >>> data = keras_mlh.datasets.mnist5k()  # doctest: +SKIP
    >>> meta = export_encoder(model, "mnist_encoder", sample_images=data.x_query)  # doctest: +SKIP
    >>> meta["validation"]["onnx"]["bit_agreement"]  # doctest: +SKIP
    1.0
    """
    # Before loading: a folder that may not be written fails fast.
    source = model_or_path if isinstance(model_or_path, (str, os.PathLike)) else None
    out_dir = check_out_dir(out_dir, overwrite, inputs=[source])
    return write_encoder(
        _as_mlh(model_or_path),
        out_dir,
        formats=formats,
        opset=opset,
        atol=atol,
        validate=validate,
        sample_images=sample_images,
        resize_to=resize_to,
    )


def write_encoder(
    model,
    out_dir,
    formats=FORMATS,
    opset=MIN_OPSET,
    atol=1e-4,
    validate=True,
    sample_images=None,
    resize_to=None,
):
    """`export_encoder` into a folder that `check_out_dir` has already passed.

    For callers that check the output folder once, before loading the model
    (the command line); the arguments are those of `export_encoder`.

    Args:
        model: a built `keras_mlh.MLH`.
        out_dir: the checked folder; an earlier export there is replaced.
        formats: see `export_encoder`.
        opset: see `export_encoder`.
        atol: see `export_encoder`.
        validate: see `export_encoder`.
        sample_images: see `export_encoder`.
        resize_to: see `export_encoder`.

    Returns:
        The metadata written to `metadata.json`.
    """
    formats = _check_formats(formats)
    opset = _check_opset(opset) if "onnx" in formats else None
    if (
        isinstance(atol, bool)
        or not isinstance(atol, (int, float, np.integer, np.floating))
        or not (0 < atol < math.inf)
    ):
        raise ValueError(f"`atol` must be a positive number. Received: atol={atol!r}")
    atol = float(atol)
    model = _as_mlh(model)
    image_shape = _image_shape(model)
    resize_to = check_resize_to(resize_to, image_shape)
    images = _sample_images(sample_images, image_shape) if validate else None
    import keras

    metadata = encoder_metadata(
        model.bits,
        image_shape,
        formats,
        keras_mlh_version=__version__,
        trained_backend=keras.backend.backend(),
        num_classes=model.num_classes,
        mode=model.mode,
        retrieval_branch=model.retrieval_branch,
        # The model maps pixels to `pixels * input_scale + input_offset`.
        input_scale=model.input_scale,
        input_offset=model.input_offset,
        opset=opset,
        resize_to=None if resize_to is None else list(resize_to),
    )
    with files.atomic_folder(out_dir) as work:
        write_artifacts(model, work, formats, opset, metadata)
        metadata["validation"] = (
            check_export(
                model.build_encoder(), work, formats, images, atol, image_shape
            )
            if validate
            else None
        )
        if "onnx" in formats:
            # Lets the runtime refuse a model.onnx of another export.
            with open(os.path.join(work, ONNX_FILE), "rb") as file:
                metadata[ONNX_SHA256] = fingerprint(file.read())
        files.write_json(metadata, os.path.join(work, METADATA_FILE))
    return metadata


# ------------------------------------------------------------- arguments
def _check_formats(formats):
    if isinstance(formats, str):
        formats = (formats,)
    try:
        formats = tuple(dict.fromkeys(formats))
    except TypeError:
        formats = None
    if not formats or any(f not in FORMATS for f in formats):
        raise ValueError(
            f"`formats` must be one of {FORMATS} or a non-empty list of them. "
            f"Received: formats={formats!r}"
        )
    return formats


def _check_opset(opset):
    import tf2onnx.constants

    newest = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
    return check_int_in_range(
        "opset", opset, MIN_OPSET, newest, why=" (the newest tf2onnx converts to)"
    )


def _as_mlh(model_or_path):
    if isinstance(model_or_path, (str, os.PathLike)):
        from keras_mlh.models import load_model

        return load_model(model_or_path)
    from keras_mlh.models import MLH

    if not isinstance(model_or_path, MLH):
        raise ValueError(
            "`model_or_path` must be a keras_mlh.MLH model or the path of its "
            f".keras file. Received: {type(model_or_path).__name__}"
        )
    return model_or_path


def _image_shape(model):
    shape = model.image_shape
    if shape is None or any(d is None for d in shape):
        raise ValueError(
            f"The model's image shape must be fully known to export it; got {shape}. "
            "Train the model, or call model.build((None, height, width, channels))."
        )
    return tuple(int(d) for d in shape)


def _sample_images(sample_images, image_shape, seed=0):
    if sample_images is None:
        rng = np.random.default_rng(seed)
        shape = (NUM_RANDOM_IMAGES, *image_shape)
        return rng.integers(0, 256, shape).astype(np.float32)
    images = validate_images(sample_images, image_shape, name="sample_images")
    return images.astype(np.float32)


def check_out_dir(out_dir, overwrite=False, overwrite_flag="overwrite=True", inputs=()):
    """Checks that `out_dir` may receive an export; creates nothing.

    `export_encoder` calls it first; callers that load the model themselves
    (the command line) call it before that, so a bad folder fails fast. Only
    an earlier export (a folder with `metadata.json`) is ever replaced, and
    never one that holds an input (the source `.keras` file): replacing the
    folder would delete it.

    Args:
        out_dir: the folder to create.
        overwrite: whether an earlier export may be replaced.
        overwrite_flag: how the caller spells `overwrite`, for the message.
        inputs: the files the export reads (`None` entries skipped).

    Returns:
        The absolute path of `out_dir`.

    Raises:
        ValueError: when `out_dir` is a file, cannot be written, holds an
            input, or is a non-empty folder that is not an earlier export or
            without `overwrite`.
    """
    return files.check_output(
        out_dir,
        inputs=inputs,
        overwrite=overwrite,
        kind="folder",
        marker=METADATA_FILE,
        what="export",
        overwrite_flag=overwrite_flag,
    )

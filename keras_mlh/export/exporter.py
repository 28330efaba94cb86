"""Export a trained MLH model as a deployable encoder: SavedModel and ONNX.

Keras's own exporter (`artifacts`) writes into a temporary folder beside
`out_dir`; the export is validated against the Keras model and only then
renamed into place, so a failed export never looks like a good one.
"""

import math
import numbers
import os

import numpy as np

from keras_mlh import files
from keras_mlh.export.artifacts import MIN_OPSET, write_artifacts
from keras_mlh.export.validation import check_export
from keras_mlh.version import __version__
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

NUM_RANDOM_IMAGES = 64
MAX_SAMPLES = 256


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
    sample_key=None,
    max_samples=MAX_SAMPLES,
    overwrite_flag="overwrite=True",
):
    """Exports the encoder of a trained MLH model and validates it.

    Writes `out_dir/saved_model/`, `out_dir/model.onnx` (dynamic batch) and
    `out_dir/metadata.json`, as `keras_mlh_runtime.contract` describes: raw
    pixels in; `embedding`, ±1 `codes` and `packed` codes out. The model
    file, the folder and the arguments are checked before the model loads.

    Args:
        model_or_path: a built `keras_mlh.MLH` or the path of its `.keras`.
        out_dir: folder to create.
        formats: `"saved_model"`, `"onnx"` or a sequence of them.
        opset: ONNX opset, 17 or 18 (tf2onnx's newest).
        atol: largest allowed absolute difference of `embedding` to Keras.
        validate: fail unless each export agrees with Keras on the sample
            images (`keras_mlh.export.validation`).
        sample_images: raw pixels `(n, *image_shape)`, or an `.npy`, `.npz` or
            folder; default 64 seeded random images (real ones are best).
        overwrite: replace an earlier export in `out_dir` (only after the new
            one has passed validation; never a folder of other files).
        resize_to: the resize of a resize-then-crop training recipe, for the
            runtime to read image files as evaluation does; `None` resizes straight.
        sample_key: the array of a `sample_images` `.npz` holding them.
        max_samples: images of a `sample_images` file used at most.
        overwrite_flag: how the caller spells `overwrite`, for messages.

    Returns:
        The metadata written to `metadata.json`; `metadata["validation"]
        [format]` holds `max_abs_diff`, `bit_agreement`, `packed_matches_codes`.

    Raises:
        ValueError: bad arguments, model, folder or location.
        ExportValidationError: an export disagrees with Keras; nothing is
            written to `out_dir` then.

    Example:
    >>> data = keras_mlh.datasets.mnist5k()  # doctest: +SKIP
    >>> meta = export_encoder(model, "mnist_encoder", sample_images=data.x_query)  # doctest: +SKIP
    >>> meta["validation"]["onnx"]["bit_agreement"]  # doctest: +SKIP
    1.0
    """
    source = _path_or_none(model_or_path)
    out_dir = _check_paths(source, out_dir, sample_images, overwrite, overwrite_flag)
    formats, opset, atol = _check_arguments(formats, opset, atol)
    model = _as_mlh(model_or_path)
    shape = _image_shape(model)
    resize_to = check_resize_to(resize_to, shape)
    images = None
    if validate:
        images = _sample_images(sample_images, shape, sample_key, max_samples, source)
    return _write(model, out_dir, formats, opset, atol, images, resize_to)


def _write(model, out_dir, formats, opset, atol, images, resize_to):
    """Writes the export, validates it on `images` (unless `None`), moves it."""
    import keras

    metadata = encoder_metadata(
        model.bits,
        model.image_shape,
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
        metadata["validation"] = None
        if images is not None:
            encoder = model.build_encoder()
            metadata["validation"] = check_export(encoder, work, formats, images, atol)
        if "onnx" in formats:
            # Lets the runtime refuse a model.onnx of another export.
            with open(os.path.join(work, ONNX_FILE), "rb") as file:
                metadata[ONNX_SHA256] = fingerprint(file.read())
        files.write_json(metadata, os.path.join(work, METADATA_FILE))
    return metadata


def _check_paths(source, out_dir, sample_images, overwrite, overwrite_flag):
    """The absolute `out_dir`, once it, the model file and the samples pass."""
    samples = _path_or_none(sample_images)
    # Only an earlier export (with metadata.json) is ever replaced, and never
    # a folder holding an input: replacing the folder would delete it.
    out_dir = files.check_output(
        out_dir,
        inputs=[source, samples],
        overwrite=overwrite,
        kind="folder",
        marker=METADATA_FILE,
        what="export",
        overwrite_flag=overwrite_flag,
    )
    if source is not None:
        files.check_model_file(source)
    if samples is not None and not os.path.exists(samples):
        raise ValueError(f"Sample images not found: {samples!r}.")
    return out_dir


def _path_or_none(value):
    return os.fspath(value) if isinstance(value, (str, os.PathLike)) else None


def _check_arguments(formats, opset, atol):
    """`formats` as a tuple, `opset` (for ONNX) and `atol`, checked."""
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
    if "onnx" in formats:
        import tf2onnx.constants

        newest = max(tf2onnx.constants.OPSET_TO_IR_VERSION)
        why = " (the newest tf2onnx converts to)"
        opset = check_int_in_range("opset", opset, MIN_OPSET, newest, why=why)
    number = isinstance(atol, numbers.Real) and not isinstance(atol, bool)
    if not (number and 0 < atol < math.inf):
        raise ValueError(f"`atol` must be a positive number. Received: atol={atol!r}")
    return formats, opset if "onnx" in formats else None, float(atol)


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


def _sample_images(sample_images, image_shape, key, max_samples, model_path):
    if sample_images is None:
        rng = np.random.default_rng(0)
        shape = (NUM_RANDOM_IMAGES, *image_shape)
        return rng.integers(0, 256, shape).astype(np.float32)
    if isinstance(sample_images, (str, os.PathLike)):
        from keras_mlh.encoding import open_images

        path = os.fspath(sample_images)
        found = open_images(
            path, image_shape, key, what="Sample images", model_path=model_path
        )
        sample_images = next(found.chunks(max_samples))  # the first ones
    images = validate_images(sample_images, image_shape, name="sample_images")
    return images.astype(np.float32)

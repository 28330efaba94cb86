"""Export a trained MLH model as a deployable encoder: SavedModel and ONNX.

The encoder is preprocessing + backbone + hash head + the retrieval branch,
with three outputs: `embedding` (float32 continuous code, tanh range),
`codes` (int8 ±1, `where(embedding >= 0, 1, -1)`) and `packed` (uint8,
`bits / 8` bytes per code, in `keras_mlh.codes.BIT_ORDER`, the order of the
faiss index). Its input `images` is float32 raw pixels
`(batch, height, width, channels)` in [0, 255]; the TensorFlow-free runtime
(`keras_mlh_runtime.HashEncoder`) casts uint8 images.

Everything is written to a temporary folder beside `out_dir`, validated, and
only then renamed into place: a failed export never leaves a folder that
looks like a good one.
"""

import json
import math
import os
import shutil

import numpy as np

from keras_mlh import files
from keras_mlh.files import check_model_file
from keras_mlh.version import __version__
from keras_mlh_runtime.codes import pack_codes

# The export contract (file names, input, outputs, dtypes, metadata schema)
# is the runtime's, which reads what this writes.
from keras_mlh_runtime.contract import (
    FORMATS,
    INPUT_NAME,
    METADATA_FILE,
    METADATA_FORMAT,
    ONNX_FILE,
    ONNX_TYPES,
    OUTPUT_DTYPES,
    OUTPUT_NAMES,
    SAVED_MODEL_DIR,
    check_resize_to,
    encoder_metadata,
)
from keras_mlh_runtime.errors import check_int_in_range, first_line
from keras_mlh_runtime.pixels import validate_images

__all__ = [
    "FORMATS",
    "METADATA_FILE",
    "METADATA_FORMAT",
    "ONNX_FILE",
    "OUTPUT_DTYPES",
    "OUTPUT_NAMES",
    "SAVED_MODEL_DIR",
    "ExportValidationError",
    "check_model_file",
    "check_out_dir",
    "export_encoder",
    "load_mlh",
    "write_encoder",
]
MIN_OPSET = 17
MIN_BIT_AGREEMENT = 0.999
NUM_RANDOM_IMAGES = 64
TEMP_PREFIX = files.TEMP_PREFIX


class ExportValidationError(ValueError):
    """An exported encoder disagrees with the Keras model it came from."""


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
    the bit order of `keras_mlh.codes.pack_codes` and `HammingIndex`).

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

    if keras.backend.backend() != "tensorflow":
        return _export_from_other_backend(
            model,
            out_dir,
            formats,
            opset,
            atol,
            images if validate else None,
            resize_to,
        )
    with files.atomic_folder(out_dir) as work:
        encoder = model.build_encoder()
        metadata = encoder_metadata(
            model.bits,
            image_shape,
            formats,
            keras_mlh_version=__version__,
            num_classes=model.num_classes,
            mode=model.mode,
            retrieval_branch=model.retrieval_branch,
            # The model maps pixels to `pixels * input_scale + input_offset`.
            input_scale=model.input_scale,
            input_offset=model.input_offset,
            opset=opset,
            resize_to=None if resize_to is None else list(resize_to),
        )
        serve, spec = _serving_function(encoder, model.bits, image_shape)
        if "saved_model" in formats:
            _write_saved_model(encoder, serve, os.path.join(work, SAVED_MODEL_DIR))
        if "onnx" in formats:
            _write_onnx(serve, spec, os.path.join(work, ONNX_FILE), opset, metadata)
        metadata["validation"] = (
            _validate(encoder, work, formats, images, atol, image_shape)
            if validate
            else None
        )
        files.write_json(metadata, os.path.join(work, METADATA_FILE))
    return metadata


def _export_from_other_backend(model, out_dir, formats, opset, atol, images, resize_to):
    """`export_encoder` for a model on JAX or PyTorch, in a TensorFlow process.

    The `.keras` file is the same on every backend, so a fresh TensorFlow
    process (`keras_mlh.export.tensorflow_worker`) reloads it and writes and
    validates the same artifacts as a TensorFlow-trained model gets. Then this
    process checks them against the model on its own backend too (recorded
    as `metadata["validation"]["source_backend"]`) before they are moved into
    place.
    """
    import subprocess
    import sys

    import keras

    backend = keras.backend.backend()
    with files.atomic_folder(out_dir) as work:
        scratch = os.path.join(work, "request")
        os.makedirs(scratch)
        model_path = os.path.join(scratch, "model.keras")
        model.save(model_path)
        images_path = None
        if images is not None:
            images_path = os.path.join(scratch, "images.npy")
            np.save(images_path, images)
        encoder_dir = os.path.join(work, "encoder")
        request = {
            "model": model_path,
            "out_dir": encoder_dir,
            "formats": list(formats),
            "opset": MIN_OPSET if opset is None else opset,
            "atol": atol,
            "validate": images is not None,
            "sample_images": images_path,
            "resize_to": resize_to,
        }
        files.write_json(request, os.path.join(scratch, "request.json"))
        env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "keras_mlh.export.tensorflow_worker",
                os.path.join(scratch, "request.json"),
            ],
            capture_output=True,
            text=True,
            env=env,
        )
        if result.returncode != 0:
            _raise_worker_error(result, backend)
        metadata_path = os.path.join(encoder_dir, METADATA_FILE)
        with open(metadata_path) as file:
            metadata = json.load(file)
        metadata["trained_backend"] = backend
        if images is not None:
            # The TensorFlow reload matched the exports; the exports must
            # match the model as this backend computes it too.
            reference = model.embed(images)
            run = (
                _onnx_runner(encoder_dir, model.image_shape)
                if "onnx" in formats
                else _saved_model_runner(encoder_dir, model.image_shape)
            )
            metadata["validation"]["source_backend"] = {
                "backend": backend,
                "format": "onnx" if "onnx" in formats else "saved_model",
                **_compare(f"{backend}-trained", run(images), reference, atol),
            }
        files.write_json(metadata, metadata_path)
        shutil.rmtree(scratch)
        for name in os.listdir(encoder_dir):
            os.replace(os.path.join(encoder_dir, name), os.path.join(work, name))
        os.rmdir(encoder_dir)
    return metadata


def _raise_worker_error(result, backend):
    lines = result.stderr.strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        raise RuntimeError(
            f"The TensorFlow export of the {backend}-trained model failed "
            f"(exit status {result.returncode}): {result.stderr[-2000:]}"
        ) from None
    error = (
        ExportValidationError
        if report["type"] == "ExportValidationError"
        else ValueError
    )
    raise error(report["message"])


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


# ----------------------------------------------------------------- writing
def _serving_function(encoder, bits, image_shape):
    import tensorflow as tf

    spec = tf.TensorSpec([None, *image_shape], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images):
        embedding = encoder(images, training=False)
        signs = tf.cast(embedding >= 0, tf.float32)  # not sign(): sign(0) == 0
        # Bit j of each byte weighs 2**j (BIT_ORDER "little"). Made inside the
        # traced function: a captured constant would become an ONNX input.
        weights = tf.constant(2.0 ** np.arange(8), tf.float32)
        packed = tf.reduce_sum(tf.reshape(signs, [-1, bits // 8, 8]) * weights, -1)
        return {
            "embedding": tf.identity(embedding),
            "codes": tf.cast(signs * 2.0 - 1.0, tf.int8),
            "packed": tf.cast(packed, tf.uint8),
        }

    return serve, spec


def _write_saved_model(encoder, serve, path):
    import keras

    archive = keras.export.ExportArchive()
    archive.track(encoder)
    archive.add_endpoint("serving_default", serve)
    archive.write_out(path, verbose=False)


def _write_onnx(serve, spec, path, opset, metadata):
    import onnx
    import tf2onnx

    try:
        proto, _ = tf2onnx.convert.from_function(
            serve, input_signature=[spec], opset=opset
        )
    except Exception as error:  # tf2onnx raises many types
        raise ValueError(
            f"tf2onnx could not convert the encoder to ONNX opset {opset}: "
            f"{first_line(error)}. Try another `opset`, or export "
            "formats=('saved_model',) only."
        ) from None
    # Name the dynamic batch dimension instead of tf2onnx's `unk__N`.
    for value in [*proto.graph.input, *proto.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    onnx.helper.set_model_props(
        proto,
        {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()},
    )
    onnx.save(proto, path)


# -------------------------------------------------------------- validation
def _keras_embedding(encoder, images):
    """The Keras encoder's `embedding`: the reference every export must match."""
    return np.asarray(encoder.predict(images, verbose=0), dtype=np.float32)


def _validate(encoder, folder, formats, images, atol, image_shape):
    batches = [images[:1], images]  # two batch sizes
    reference = np.concatenate([_keras_embedding(encoder, b) for b in batches])
    results = {
        "num_images": int(len(images)),
        "atol": atol,
        "min_bit_agreement": MIN_BIT_AGREEMENT,
    }
    runners = {"saved_model": _saved_model_runner, "onnx": _onnx_runner}
    for name in formats:
        run = runners[name](folder, image_shape)
        outputs = [run(batch) for batch in batches]
        merged = {k: np.concatenate([o[k] for o in outputs]) for k in OUTPUT_NAMES}
        results[name] = _compare(name, merged, reference, atol)
    return results


def _saved_model_runner(folder, image_shape):
    import tensorflow as tf

    signature = tf.saved_model.load(os.path.join(folder, SAVED_MODEL_DIR)).signatures[
        "serving_default"
    ]

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
    expected_inputs = [(INPUT_NAME, "tensor(float)", ["batch", *image_shape])]
    if inputs != expected_inputs:
        raise ExportValidationError(
            f"The ONNX graph has inputs {inputs}; expected {expected_inputs} (did a "
            "captured constant become an input?)."
        )
    types = {o.name: o.type for o in session.get_outputs()}
    expected = dict(ONNX_TYPES)
    if types != expected:
        raise ExportValidationError(f"ONNX outputs are {types}; expected {expected}.")

    def run(images):
        values = session.run(list(OUTPUT_NAMES), {INPUT_NAME: images})
        return dict(zip(OUTPUT_NAMES, values, strict=True))

    return run


def _compare(name, outputs, reference, atol):
    """Checks one export's outputs against the Keras embedding.

    Returns the comparison; raises `ExportValidationError` when it fails.
    """
    embedding, codes, packed = (outputs[k] for k in OUTPUT_NAMES)
    dtypes = {k: str(outputs[k].dtype) for k in OUTPUT_NAMES}
    if dtypes != OUTPUT_DTYPES or embedding.shape != reference.shape:
        raise ExportValidationError(
            f"The {name} export gives dtypes {dtypes} and embedding shape "
            f"{embedding.shape}; expected {OUTPUT_DTYPES} and {reference.shape}."
        )
    expected_codes = np.where(reference >= 0, 1, -1).astype(np.int8)
    try:
        packed_ok = bool(np.array_equal(packed, pack_codes(codes)))
    except ValueError:  # codes that are not all ±1
        packed_ok = False
    result = {
        "max_abs_diff": float(np.max(np.abs(embedding - reference))),
        "bit_agreement": float(np.mean(codes == expected_codes)),
        "packed_matches_codes": packed_ok,
    }
    problems = []
    if not result["max_abs_diff"] <= atol:  # also catches NaN
        problems.append(
            f"embedding differs by {result['max_abs_diff']:.3g} > atol={atol:g}"
        )
    if result["bit_agreement"] < MIN_BIT_AGREEMENT:
        problems.append(
            f"only {100 * result['bit_agreement']:.3f}% of bits agree "
            f"(need {100 * MIN_BIT_AGREEMENT:g}%)"
        )
    if not packed_ok:
        problems.append("`packed` is not the packed `codes`")
    if problems:
        raise ExportValidationError(
            f"The {name} export disagrees with the Keras model: {'; '.join(problems)}. "
            "Nothing was written to the output folder; re-export, or pass a larger "
            "`atol` if the differences are float round-off."
        )
    return result

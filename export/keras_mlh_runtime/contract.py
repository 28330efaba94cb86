"""The export contract: what `keras_mlh.export.export_encoder` writes and
`HashEncoder` and the Beam pipeline check.

A folder holds `model.onnx` and/or `saved_model/` and `metadata.json`. The
graph takes `images`, float32 pixels `(batch, height, width, channels)` in
[0, 255], and gives `embedding` (float32 `(batch, bits)`), `codes` (int8
±1) and `packed` (uint8 `(batch, bits / 8)`, `codes.BIT_ORDER`).
"""

import hashlib
import json

import numpy as np

from keras_mlh_runtime.codes import BIT_ORDER, is_code_length

ONNX_FILE = "model.onnx"
SAVED_MODEL_DIR = "saved_model"
METADATA_FILE = "metadata.json"
METADATA_FORMAT = "keras-mlh-encoder"
FORMATS = ("saved_model", "onnx")
INPUT_NAME = "images"
OUTPUT_NAMES = ("embedding", "codes", "packed")
OUTPUT_DTYPES = {"embedding": "float32", "codes": "int8", "packed": "uint8"}
ONNX_TYPES = {
    "embedding": "tensor(float)",
    "codes": "tensor(int8)",
    "packed": "tensor(uint8)",
}
REEXPORT = "export the model again with keras_mlh.export.export_encoder"
ONNX_SHA256 = "onnx_sha256"  # metadata.json's key for model.onnx's sha256


def encoder_metadata(bits, image_shape, formats, **fields):
    """The `metadata.json` of an export, in the schema `read_export` reads.

    Args:
        bits: the code length.
        image_shape: `(height, width, channels)` of the input.
        formats: the formats written (a subset of `FORMATS`).
        **fields: further entries (mode, classes, versions, opset, ...).

    Returns:
        The metadata dict.

    Example:
    >>> encoder_metadata(32, (28, 28, 1), ["onnx"])["bytes_per_code"]
    4
    """
    return {
        "format": METADATA_FORMAT,
        "bits": int(bits),
        "bytes_per_code": int(bits) // 8,
        "bit_order": BIT_ORDER,
        "input_name": INPUT_NAME,
        "input_shape": [int(d) for d in image_shape],
        "input_dtype": "float32",
        "input_range": [0, 255],
        "output_names": list(OUTPUT_NAMES),
        "output_dtypes": dict(OUTPUT_DTYPES),
        "formats": list(formats),
        **fields,
    }


def check_resize_to(resize_to, image_shape):
    """The checked `resize_to` of an encoder trained with a resize-then-crop
    recipe (e.g. 256 -> 224): files are resized to it, then center-cropped.

    Args:
        resize_to: `None`, or two ints at least the input's height and width.
        image_shape: the encoder's `(height, width, channels)`.

    Returns:
        `None` or a `(height, width)` tuple of ints.

    Example:
    >>> check_resize_to([256, 256], (224, 224, 3))
    (256, 256)
    """
    if resize_to is None:
        return None
    size = (int(image_shape[0]), int(image_shape[1]))
    if (
        isinstance(resize_to, (str, bytes))
        or not hasattr(resize_to, "__len__")
        or len(resize_to) != 2
        or not all(
            isinstance(s, (int, np.integer)) and not isinstance(s, bool)
            for s in resize_to
        )
        or resize_to[0] < size[0]
        or resize_to[1] < size[1]
    ):
        raise ValueError(
            f"`resize_to` must be None or (height, width) ints at least the input "
            f"size {size}; received resize_to={resize_to!r}."
        )
    return int(resize_to[0]), int(resize_to[1])


def _parse_metadata(data, path):
    """The dict of `metadata.json`'s bytes, with valid `bits`, `input_shape`,
    `input_name` and `resize_to`."""
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path!r} is corrupt ({error}); {REEXPORT}.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise ValueError(
            f"{path!r} is not keras-mlh encoder metadata (expected "
            f'"format": "{METADATA_FORMAT}"); {REEXPORT}.'
        )
    bits, shape = metadata.get("bits"), metadata.get("input_shape")
    problems = []
    if not (isinstance(bits, int) and is_code_length(bits)):
        problems.append(f"bits={bits!r} (expected a positive multiple of 8)")
    if not (
        isinstance(shape, list)
        and len(shape) == 3
        and all(isinstance(d, int) and d > 0 for d in shape)
    ):
        problems.append(f"input_shape={shape!r} (expected [height, width, channels])")
    if not isinstance(metadata.get("input_name"), str):
        problems.append(
            f"input_name={metadata.get('input_name')!r} (expected a string)"
        )
    if not problems:
        try:
            check_resize_to(metadata.get("resize_to"), shape)
        except ValueError:
            problems.append(
                f"resize_to={metadata.get('resize_to')!r} (expected null or "
                "[height, width] at least the input size)"
            )
    if problems:
        raise ValueError(f"{path!r} has invalid {', '.join(problems)}; {REEXPORT}.")
    return metadata


def read_export(folder, open_file, join):
    """The checked `metadata.json`, `model.onnx` path and bytes of a folder;
    `model.onnx` must have the sha256 of `metadata.json` (one damaged or of
    another export would load and give other codes).

    Args:
        folder: the export folder.
        open_file: opens a path to read bytes (`FileSystems.open` on Beam).
        join: joins a folder and a name (`FileSystems.join` on Beam).

    Returns:
        `(metadata, onnx_path, onnx_bytes)`.

    Example:
    >>> metadata, onnx_path, data = read_export("encoder", open, os.path.join)  # doctest: +SKIP
    """
    contents = {}
    for name, fix in ((METADATA_FILE, ""), (ONNX_FILE, "(..., formats=('onnx',))")):
        path = join(folder, name)
        try:
            with open_file(path) as file:
                contents[name] = file.read()
        except Exception as error:  # OSError, or a remote file system's own
            raise ValueError(
                f"{path!r} is missing or unreadable ({type(error).__name__}); "
                f"{REEXPORT}{fix}."
            ) from None
    metadata = _parse_metadata(contents[METADATA_FILE], join(folder, METADATA_FILE))
    data = contents[ONNX_FILE]
    expected, actual = metadata.get(ONNX_SHA256), fingerprint(data)
    if expected is None:
        raise ValueError(
            f"Export folder {folder!r}: metadata.json has no {ONNX_SHA256} (the "
            f"fingerprint of {ONNX_FILE}), so the file cannot be checked; {REEXPORT}."
        )
    if actual != expected:
        raise ValueError(
            f"Export folder {folder!r}: {ONNX_FILE} is not the file its "
            f"metadata.json was written with (sha256 {actual[:12]}... != "
            f"{str(expected)[:12]}...): it is damaged or comes from another "
            f"export; {REEXPORT} into this folder."
        )
    return metadata, join(folder, ONNX_FILE), data


def check_session(session, metadata, onnx_path):
    """Checks an onnxruntime session of `model.onnx` against its metadata.

    Args:
        session: the `onnxruntime.InferenceSession`.
        metadata: the checked `metadata.json` (`read_export`).
        onnx_path: the ONNX file, for the message.

    Returns:
        `metadata`.

    Example:
    >>> check_session(session, metadata, "encoder/model.onnx")  # doctest: +SKIP
    """
    inputs = [(i.name, i.type, i.shape[1:]) for i in session.get_inputs()]
    expected_inputs = [
        (metadata["input_name"], "tensor(float)", list(metadata["input_shape"]))
    ]
    outputs = {o.name: (o.type, o.shape[1:]) for o in session.get_outputs()}
    bits = metadata["bits"]
    widths = {"embedding": bits, "codes": bits, "packed": bits // 8}
    expected_outputs = {
        name: (ONNX_TYPES[name], [widths[name]]) for name in OUTPUT_NAMES
    }
    if inputs != expected_inputs or outputs != expected_outputs:
        raise ValueError(
            f"{onnx_path!r} does not match its metadata.json: it has inputs {inputs} "
            f"and outputs {outputs}, metadata.json expects inputs {expected_inputs} "
            f"and outputs {expected_outputs}; {REEXPORT}."
        )
    return metadata


def fingerprint(data):
    """The sha256 of a file's bytes, as `metadata.json` records it.

    Example:
    >>> fingerprint(b"")[:8]
    'e3b0c442'
    """
    return hashlib.sha256(data).hexdigest()

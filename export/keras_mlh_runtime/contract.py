"""The export contract: what `keras_mlh.export.export_encoder` writes and
`HashEncoder` and the Beam pipeline check.

A folder holds `model.onnx` and/or `saved_model/` and `metadata.json`. The
graph takes `images`, float32 pixels `(batch, height, width, channels)` in
[0, 255], and gives `embedding` (float32 `(batch, bits)`), `codes` (int8
±1) and `packed` (uint8 `(batch, bits / 8)`, `codes.BIT_ORDER`).
"""

import hashlib
import json

from keras_mlh_runtime.codes import BIT_ORDER
from keras_mlh_runtime.errors import first_line, is_int

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
    """The `metadata.json` of an export, in the schema `open_export` reads.

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
        `None` or a `(height, width)` tuple.

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
        or not all(is_int(s) for s in resize_to)
        or resize_to[0] < size[0]
        or resize_to[1] < size[1]
    ):
        raise ValueError(
            f"`resize_to` must be None or (height, width) ints at least the input "
            f"size {size}; received resize_to={resize_to!r}."
        )
    return int(resize_to[0]), int(resize_to[1])


def _parse_metadata(data, path):
    """The dict of `metadata.json`'s bytes, with a valid `bits`."""
    try:
        metadata = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path!r} is corrupt ({error}); {REEXPORT}.") from None
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise ValueError(
            f"{path!r} is not keras-mlh encoder metadata (expected "
            f'"format": "{METADATA_FORMAT}"); {REEXPORT}.'
        )
    bits = metadata.get("bits")
    if not (is_int(bits) and bits > 0 and bits % 8 == 0):
        raise ValueError(
            f"{path!r} has invalid bits={bits!r} (expected a positive multiple of "
            f"8); {REEXPORT}."
        )
    return metadata


def open_export(
    folder, open_file, join, providers=("CPUExecutionProvider",), threads=None
):
    """An export folder's checked `metadata.json` and onnxruntime session.

    `model.onnx` must have the sha256 recorded in `metadata.json` (one
    damaged or of another export would load and give other codes), and its
    input and outputs must be the metadata's.

    Args:
        folder: the export folder.
        open_file: opens a path to read bytes (`FileSystems.open` on Beam).
        join: joins a folder and a name (`FileSystems.join` on Beam).
        providers: onnxruntime execution providers, preferred first.
        threads: onnxruntime intra-op threads (`None`: its default).

    Returns:
        `(metadata, onnx_path, session)`; `HashEncoder.load` is the example.
    """
    import onnxruntime as ort

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
    meta_path = join(folder, METADATA_FILE)
    metadata = _parse_metadata(contents[METADATA_FILE], meta_path)
    data, onnx_path = contents[ONNX_FILE], join(folder, ONNX_FILE)
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
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0  # 0: the default
        # onnxruntime parses the bytes that were checked, not the file again.
        session = ort.InferenceSession(data, options, providers=list(providers))
    except Exception as error:  # onnxruntime raises its own exception types
        raise ValueError(
            f"{onnx_path!r} is corrupt or unreadable ({first_line(error)}); {REEXPORT}."
        ) from None
    inputs = [(i.name, i.type, i.shape[1:]) for i in session.get_inputs()]
    outputs = {o.name: (o.type, o.shape[1:]) for o in session.get_outputs()}
    bits, shape = metadata["bits"], metadata.get("input_shape")
    widths = {"embedding": bits, "codes": bits, "packed": bits // 8}
    expected = (
        [(metadata.get("input_name"), "tensor(float)", shape)],
        {name: (ONNX_TYPES[name], [widths[name]]) for name in OUTPUT_NAMES},
    )
    if (inputs, outputs) != expected:
        raise ValueError(
            f"{onnx_path!r} does not match its metadata.json: it has inputs {inputs} "
            f"and outputs {outputs}, metadata.json expects inputs {expected[0]} "
            f"and outputs {expected[1]}; {REEXPORT}."
        )
    try:
        check_resize_to(metadata.get("resize_to"), shape)
    except ValueError as error:
        raise ValueError(f"{meta_path!r}: {error} {REEXPORT}.") from None
    return metadata, onnx_path, session


def fingerprint(data):
    """The sha256 of a file's bytes, as `metadata.json` records it.

    Example:
    >>> fingerprint(b"")[:8]
    'e3b0c442'
    """
    return hashlib.sha256(data).hexdigest()

"""Reading the command line's inputs: models, arrays, images and codes files.

Every reader checks its input and raises a `CLIError` that names the file
and says what to do, before TensorFlow is imported where it can (a missing
or broken model file fails in a fraction of a second). Outputs are written
through `keras_mlh.files` by the commands themselves.
"""

import importlib
import json
import os
import sys
import tempfile

import numpy as np

from keras_mlh.cli.errors import CLIError, one_line
from keras_mlh.datasets.sources import IMAGE_EXTENSIONS, image_files
from keras_mlh.files import check_model_file

IMAGE_KEYS = ("images", "x", "x_query")
LABEL_KEYS = ("labels", "y")
ENCODE_CHUNK = 256
# A file-backed split (a run folder's split.npz for folder or list-file
# data) names its images by path: `x_query` -> `query_paths`, and so on.
FILE_SPLIT_KEY = "image_root"


# ------------------------------------------------------------ files, arrays
def require_file(path, what, hint=""):
    """Raises a `CLIError` unless `path` is an existing file.

    Args:
        path: the path to check.
        what: what the file is, for the message (e.g. "Codes file").
        hint: a sentence appended to the message.
    """
    if os.path.isdir(path):
        raise CLIError(f"{what} {path!r} is a folder, not a file.{hint}")
    if not os.path.isfile(path):
        raise CLIError(f"{what} not found: {path!r}.{hint}")


def require_images(path, what="Images"):
    """Raises a `CLIError` unless the images `path` (a file or folder) exist.

    Args:
        path: the `.npy`, `.npz` or folder of images.
        what: what the images are, for the message (e.g. "Query images").
    """
    if not os.path.exists(path):
        raise CLIError(f"{what} not found: {path!r}.")


def require_model(path):
    """Checks a model file without importing TensorFlow, so errors come fast.

    Args:
        path: the `.keras` file.
    """
    check_model_file(
        path, fix="pass the model.keras of a run folder made by `keras-mlh train`"
    )


# TensorFlow's start-up lines (twice: two of its libraries log them). They
# come from C++ before absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL
# does not hide them; TF_ENABLE_ONEDNN_OPTS=0 would, but it turns oneDNN off.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)
# `main` sets it for --debug: the start-up lines are shown then.
show_startup_logs = False


def quiet_tensorflow(tensorflow=False):
    """Imports Keras (and its TensorFlow) with the start-up lines left out.

    Call it before the first import of Keras or TensorFlow: the lines are
    written by C++ to file descriptor 2 while the libraries load, so they
    are caught there and every other line is passed on to stderr. Later
    calls, and calls with `show_startup_logs` set (`--debug`), only import.

    Args:
        tensorflow: import TensorFlow too, whatever the Keras backend (the
            exporter needs it).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # info and warnings
    import_quietly(["keras", "tensorflow"] if tensorflow else ["keras"])


def import_quietly(modules):
    """Imports `modules`, leaving out the `STARTUP_NOISE` lines they log.

    Args:
        modules: module names, imported in order.
    """
    if show_startup_logs or all(m in sys.modules for m in modules):
        for module in modules:
            importlib.import_module(module)
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            for module in modules:
                importlib.import_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            rest = [line for line in lines if not any(n in line for n in STARTUP_NOISE)]
            sys.stderr.write("".join(rest))
            sys.stderr.flush()


def load_model(path):
    """Loads an MLH model whose file `require_model` has checked.

    Commands call `require_model` once, first, so that a wrong path fails
    before any slow work; the file is not checked again here.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras_mlh.MLH` model.
    """
    quiet_tensorflow()
    from keras_mlh.models.loading import load_checked_model

    return load_checked_model(path)


def load_npz(path, what):
    """All arrays of an `.npz` file, read without pickles.

    Args:
        path: the `.npz` file.
        what: what the file is, for messages.

    Returns:
        A dict of name -> array.
    """
    require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:
        raise CLIError(
            f"Cannot read {what} {path!r} as a numpy .npz archive: {one_line(error)}"
        ) from None


def load_npy(path, what):
    """The array of an `.npy` file, read without pickles.

    Args:
        path: the `.npy` file.
        what: what the file is, for messages.

    Returns:
        The array.
    """
    require_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:
        raise CLIError(
            f"Cannot read {what} {path!r} as a numpy .npy array: {one_line(error)}"
        ) from None


def pick(arrays, keys, path, fix):
    """The first of `keys` present in `arrays`.

    Args:
        arrays: the arrays of a file, name -> array.
        keys: the accepted names, preferred first.
        path: the file, for the message.
        fix: what to do when none is there, for the message.

    Returns:
        The key found.
    """
    for key in keys:
        if key in arrays:
            return key
    raise CLIError(
        f"{path!r} has the arrays {sorted(arrays) or 'none'} but needs "
        f"{' or '.join(repr(k) for k in keys)}; {fix}"
    )


def save_npy(path, array):
    """Writes one array to exactly `path` (`np.save` would add `.npy`).

    Args:
        path: the file, usually a temporary name from `keras_mlh.files`.
        array: the array; pickled objects are refused.
    """
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def save_npz(path, **arrays):
    """Writes arrays, compressed, to exactly `path` (`np.savez` would add `.npz`).

    Args:
        path: the file, usually a temporary name from `keras_mlh.files`.
        **arrays: the arrays by name.
    """
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def check_ids(ids, count, path, per):
    """`ids` from a file as int64, one per image or code.

    Args:
        ids: the array stored as `ids`.
        count: how many there must be.
        path: the file, for the message.
        per: "image" or "code", for the message.

    Returns:
        int64 array `(count,)`.
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (count,):
        raise CLIError(
            f"`ids` in {path!r} must be {count} integers, one per {per}. "
            f"Received: shape={ids.shape}, dtype={ids.dtype}"
        )
    return ids.astype(np.int64)


# ------------------------------------------------------------------ images
class Images:
    """Images to encode: an array, or image files read lazily in chunks.

    Attributes:
        count: number of images.
        chunks: `chunks(size)` yields uint8 or float arrays of at most
            `size` images, in order.
        paths: the files' paths relative to the folder given, or `None`.
        ids: int64 ids stored beside an array, or `None`.
        labels: labels stored beside an array, or `None`.
    """

    def __init__(self, count, chunks, paths=None, ids=None, labels=None):
        self.count = count
        self.chunks = chunks
        self.paths = paths
        self.ids = ids
        self.labels = labels


def open_images(path, image_shape, key=None, what="Images", model_path=None):
    """Images from an `.npy`, an `.npz` or a folder, checked against a model.

    Args:
        path: an `.npy` array, an `.npz` (images under `key`, else `images`,
            `x` or `x_query`; `ids` and labels are carried over) or a folder
            searched recursively for image files, resized to `image_shape`.
        image_shape: the model's `(height, width, channels)`.
        key: the array of an `.npz` holding the images.
        what: what the images are, for messages.
        model_path: the model's file; when it lies in a run folder trained
            with a resize-then-crop recipe, folder images get the same
            resize and central crop.

    Returns:
        `Images`.
    """
    if os.path.isdir(path):
        return _folder_images(path, image_shape, run_resize_to(model_path))
    if path.lower().endswith(".npy"):
        arrays, key = {"images": load_npy(path, what)}, "images"
    elif path.lower().endswith(".npz"):
        arrays = load_npz(path, what)
        if FILE_SPLIT_KEY in arrays:
            return split_file_images(arrays, key or "x_query", image_shape, path)
        key = pick(
            arrays,
            (key,) if key else IMAGE_KEYS,
            path,
            "save images with np.savez(FILE, images=images) or name the array "
            "with --key.",
        )
    else:
        require_images(path, what)
        raise CLIError(
            f"{what} must be an .npy or .npz file or a folder of image files; "
            f"got {path!r}."
        )
    images = array_images(arrays[key], image_shape, key, path)
    if "ids" in arrays:
        images.ids = check_ids(arrays["ids"], images.count, path, "image")
    # Labels beside the images: `labels`/`y`, or `y_query` for `x_query`.
    label_keys = ("y" + key[1:], *LABEL_KEYS) if key.startswith("x_") else LABEL_KEYS
    label_key = next((k for k in label_keys if k in arrays), None)
    if label_key is not None and len(arrays[label_key]) == images.count:
        images.labels = arrays[label_key]
    return images


def array_images(array, image_shape, name, path):
    """An array of images checked against a model's image shape.

    Args:
        array: the images.
        image_shape: the model's `(height, width, channels)`.
        name: the array's name in its file, for messages.
        path: the file, for messages.

    Returns:
        `Images`.
    """
    from keras_mlh.datasets.validation import validate_images

    try:
        images = validate_images(array, image_shape, name=name)
    except ValueError as error:
        raise CLIError(
            f"{path!r}: {one_line(error)} (image files in a folder are resized "
            "automatically)"
        ) from None

    def chunks(size):
        for start in range(0, len(images), size):
            yield images[start : start + size]

    return Images(len(images), chunks)


def run_resize_to(model_path):
    """The `resize_to` of the run folder holding `model_path`, or `None`.

    Args:
        model_path: a model file, or `None`.

    Returns:
        `(height, width)` from `run.json`'s `image_recipe`, or `None` (no
        run folder, an array-trained run, or a straight resize).
    """
    if model_path is None:
        return None
    path = os.path.join(os.path.dirname(os.path.abspath(model_path)), "run.json")
    try:
        with open(path) as f:
            recipe = json.load(f).get("image_recipe") or {}
    except (OSError, ValueError, AttributeError):
        return None
    size = recipe.get("resize_to")
    if (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(s, int) for s in size)
    ):
        return tuple(size)
    return None


def _folder_images(folder, image_shape, resize_to=None):
    files = image_files(folder)
    if not files:
        raise CLIError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {folder!r} "
            "or its subfolders."
        )
    images = file_images(files, image_shape, resize_to=resize_to, where=folder)
    images.paths = np.array([os.path.relpath(f, folder) for f in files])
    return images


def file_images(paths, image_shape, resize_to=None, where=None):
    """Image files streamed through the input pipeline, checked first.

    Every file's header is checked before any is decoded (a missing or
    foreign file fails at once); chunks are read and decoded in parallel.

    Args:
        paths: the image files.
        image_shape: the model's `(height, width, channels)`.
        resize_to: `None`, or the `(height, width)` resized to before the
            central crop of the model's size (the training recipe's).
        where: the folder or file that named the paths, for messages.

    Returns:
        `Images`.
    """
    from keras_mlh.datasets.image_check import check_image_files

    height, width, channels = image_shape
    _color_mode(channels, where or "the image files")
    try:
        check_image_files(paths)
    except ValueError as error:
        raise CLIError(one_line(error)) from None

    def chunks(size):
        from keras_mlh.datasets.image_pipeline import image_dataset, iterate_batches

        quiet_tensorflow()
        dataset = image_dataset(
            paths,
            image_size=(height, width),
            channels=channels,
            batch_size=size,
            resize_to=resize_to,
        )
        try:
            yield from iterate_batches(dataset)
        except ValueError as error:
            raise CLIError(one_line(error)) from None

    return Images(len(paths), chunks)


def split_file_images(arrays, key, image_shape, path):
    """The images of a file-backed split (`query_paths`, ...) named by `key`.

    Args:
        arrays: the split file's arrays.
        key: `x_query`, `x_database` or `x_train` (or `query`, ...).
        image_shape: the model's `(height, width, channels)`.
        path: the split file, for messages.

    Returns:
        `Images`, with the split's labels and relative paths.
    """
    role = key[2:] if key.startswith("x_") else key
    if f"{role}_paths" not in arrays:
        roles = sorted(k[: -len("_paths")] for k in arrays if k.endswith("_paths"))
        raise CLIError(
            f"{path!r} is a file-backed split of {', '.join(roles)} images; "
            f"--key {key!r} names none of them (use x_{roles[0]})."
        )
    root = str(arrays[FILE_SPLIT_KEY])
    relative = [str(p) for p in arrays[f"{role}_paths"]]
    resize_to = arrays.get("resize_to")
    if resize_to is not None and tuple(resize_to) == tuple(image_shape[:2]):
        resize_to = None
    images = file_images(
        [os.path.join(root, p) for p in relative],
        image_shape,
        resize_to=None if resize_to is None else tuple(int(s) for s in resize_to),
        where=path,
    )
    images.paths = np.array(relative)
    if f"y_{role}" in arrays:
        images.labels = arrays[f"y_{role}"]
    return images


def _color_mode(channels, path):
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if channels not in modes:
        raise CLIError(
            f"The model takes {channels}-channel images; image files in {path!r} "
            "can only be read as 1 (grayscale), 3 (RGB) or 4 (RGBA) channels. "
            "Pass an .npy/.npz array instead."
        )
    return modes[channels]


def encode_images(model, images, batch_size, verbose, what="images"):
    """±1 int8 codes of all images, with a progress bar for many.

    One `predict` over all images (a call per chunk costs Keras's set-up each
    time: half the throughput at 256-image chunks); the next chunks are read
    in a background thread meanwhile, at most two ahead, so memory stays flat.

    Args:
        model: the `keras_mlh.MLH` model.
        images: `Images`.
        batch_size: inference batch size.
        verbose: show a progress bar (when there is more than a chunk).
        what: what the images are, for the progress line.

    Returns:
        int8 array `(images.count, bits)`, in the order of the images.
    """
    from keras_mlh_runtime.codes import binarize
    from keras_mlh_runtime.read_ahead import read_ahead

    # Whole batches per chunk: only the very last batch is partial, so the
    # progress bar can count batches.
    chunk = batch_size * -(-ENCODE_CHUNK // batch_size)
    callbacks = []
    if verbose and images.count > chunk:
        print(f"Encoding {images.count} {what}")
        callbacks.append(_progress(images.count, batch_size))

    def batches():
        for pixels in read_ahead(images.chunks(chunk), depth=2):
            for start in range(0, len(pixels), batch_size):
                yield (pixels[start : start + batch_size],)

    steps = -(-images.count // batch_size)
    outputs = model.predict(batches(), steps=steps, verbose=0, callbacks=callbacks)
    return binarize(outputs[model.retrieval_branch])


def _progress(count, batch_size):
    """A `keras.utils.Progbar` over images, as a callback of `predict`."""
    import keras

    bar = keras.utils.Progbar(count, unit_name="image")
    return keras.callbacks.LambdaCallback(
        on_predict_batch_end=lambda batch, logs: bar.update(
            min((batch + 1) * batch_size, count)
        )
    )


# ------------------------------------------------------------- codes files
def load_codes(path, what="Codes file"):
    """Packed codes with their ids and paths from a file of `keras-mlh encode`.

    Args:
        path: an `.npy` of codes, or an `.npz` with `codes` and optional
            `ids`, `paths` and `bits`; packed uint8 or ±1 codes.
        what: what the file is, for messages.

    Returns:
        `(packed, ids, paths, bits)`: uint8 codes `(n, bits / 8)`, int64 ids
        or `None`, paths (one per code) or `None`, and the code length.
    """
    from keras_mlh_runtime.codes import to_packed

    ids = paths = bits = None
    if path.lower().endswith(".npy"):
        codes = load_npy(path, what)
    elif path.lower().endswith(".npz"):
        arrays = load_npz(path, what)
        if "codes" not in arrays and any(k in arrays for k in IMAGE_KEYS):
            raise CLIError(
                f"{path!r} holds images, not codes; pass --model MODEL.keras to "
                "encode them, or encode them first with `keras-mlh encode`."
            )
        codes = arrays[
            pick(arrays, ("codes",), path, "make one with `keras-mlh encode`.")
        ]
        ids = arrays.get("ids")
        paths = arrays.get("paths")
        if "bits" in arrays:
            bits = int(arrays["bits"])
    elif os.path.isdir(path):
        raise CLIError(
            f"{path!r} is a folder: pass --model MODEL.keras to encode its images, "
            "or give a codes file from `keras-mlh encode`."
        )
    else:
        require_file(path, what)
        raise CLIError(
            f"{what} must be an .npy or .npz file from `keras-mlh encode`; got {path!r}."
        )
    try:
        packed = to_packed(codes, bits, name=f"codes of {path}")
    except ValueError as error:
        raise CLIError(one_line(error)) from None
    if ids is not None:
        ids = check_ids(ids, len(packed), path, "code")
    if paths is not None and len(paths) != len(packed):
        paths = None
    return packed, ids, paths, packed.shape[1] * 8


def load_code_files(paths, what="Codes file"):
    """The codes of one or several codes files, concatenated in order.

    Several files are, e.g., the shards of `keras_mlh_runtime.beam_encode`.

    Args:
        paths: the files (see `load_codes`).
        what: what the files are, for messages.

    Returns:
        `(packed, ids, paths, bits)` as `load_codes`: ids are `None` when no
        file has ids (the index numbers the codes 0..n-1 in this order);
        paths are kept when every file has them.
    """
    if len(paths) == 1:
        return load_codes(paths[0], what)
    real = [os.path.realpath(path) for path in paths]
    twice = next(
        (p for p, r in zip(paths, real, strict=True) if real.count(r) > 1), None
    )
    if twice is not None:
        raise CLIError(
            f"{twice!r} is given twice: its codes would be indexed twice; give "
            "each codes file once."
        )
    parts = [load_codes(path, what) for path in paths]
    lengths = {bits for _, _, _, bits in parts}
    if len(lengths) > 1:
        found = ", ".join(
            f"{p!r}: {bits}" for p, (*_, bits) in zip(paths, parts, strict=True)
        )
        raise CLIError(
            f"The codes files hold codes of different lengths ({found} bits); "
            "encode them all with the same model."
        )
    packed = np.concatenate([part[0] for part in parts])
    ids = _all_or_none(
        paths,
        [part[1] for part in parts],
        "has no `ids` but other codes files do; give every file ids, or none "
        "(the index then numbers the codes in order).",
    )
    names = _all_or_none(
        paths,
        [part[2] for part in parts],
        "has no image `paths` (one per code) but other codes files do: the "
        "index would lose them all; encode every file from image files, or "
        "index the files without paths separately.",
    )
    if names is not None:
        unique, counts = np.unique(names, return_counts=True)
        if counts.max() > 1:
            raise CLIError(
                f"The image {str(unique[counts.argmax()])!r} is in several codes "
                "files (shards of two runs over the same images?); give the "
                "shards of one run."
            )
    return packed, ids, names, lengths.pop()


def _all_or_none(files, arrays, lacking):
    """The `arrays` of every file concatenated, `None` when no file has one.

    Args:
        files: the codes files, for the message.
        arrays: one array or `None` per file.
        lacking: the message after the name of a file without one, when
            some files have one and others not.
    """
    given = [array is not None for array in arrays]
    if not any(given):
        return None
    if not all(given):
        raise CLIError(f"{files[given.index(False)]!r} {lacking}")
    return np.concatenate(arrays)

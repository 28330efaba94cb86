"""Images -> codes: the images a model encodes, the encode loop, codes files.

`encode_file` is `keras-mlh encode`: images from an `.npy`, an `.npz` or a
folder of image files, encoded by a saved model into a codes file
(`keras_mlh_runtime.code_files`); `encode_path` (the index search's image
queries) stops before the file. `open_images` and `encode_images` are their
two halves, used by evaluation and the exporter's sample images too.

Example:
>>> import keras_mlh  # doctest: +SKIP
>>> model = keras_mlh.models.load_model("runs/photos/model.keras")  # doctest: +SKIP
>>> images = open_images("photos/", model.image_shape)  # doctest: +SKIP
>>> codes = encode_images(model, images, batch_size=64)  # doctest: +SKIP
"""

import dataclasses
import json
import os

import numpy as np

from keras_mlh import files
from keras_mlh.datasets.image_recipe import ImageRecipe
from keras_mlh.datasets.sources import IMAGE_EXTENSIONS, image_files
from keras_mlh.files import check_model_file
from keras_mlh_runtime.code_files import (
    IMAGE_KEYS,
    check_ids,
    load_npy,
    load_npz,
    pick,
    save_codes,
)
from keras_mlh_runtime.errors import first_line

LABEL_KEYS = ("labels", "y")
INFERENCE_BATCH_SIZE = 256  # images per inference batch, by default
ENCODE_CHUNK = 256
# A file-backed split (a run folder's split.npz for folder or list-file
# data) names its images by path: `x_query` -> `query_paths`, and so on.
FILE_SPLIT_KEY = "image_root"
MODEL_FIX = "pass the model.keras of a run folder made by `keras-mlh train`"


@dataclasses.dataclass
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

    count: int
    chunks: object
    paths: object = None
    ids: object = None
    labels: object = None


def encode_file(
    model,
    images,
    output,
    key=None,
    batch_size=INFERENCE_BATCH_SIZE,
    verbose=1,
    overwrite=False,
):
    """Encodes images with a saved model into the codes file `output`.

    Everything is checked before the model is loaded; the file is written
    under a temporary name and renamed into place (never half-written).

    Args:
        model, images, key, batch_size, verbose: as in `encode_path`.
        output: the codes file: `.npy` (packed codes only) or `.npz` (codes,
            ids, bits, and paths or labels).
        overwrite: replace an existing `output`.

    Returns:
        `(count, bits)`: the number of codes written and their length.
    """
    if not output.lower().endswith((".npy", ".npz")):
        raise ValueError(
            f"The codes file must end in .npy (packed codes only) or .npz (codes, "
            f"ids, paths); got {output!r}."
        )
    _check_inputs(model, images)
    files.check_output(
        output,
        inputs=[model, images],
        overwrite=overwrite,
        # Codes written among the images would be read as part of them.
        not_inside=[images] if os.path.isdir(images) else [],
    )
    # Entered first: an unwritable output fails before the model is loaded.
    with files.atomic_path(output, make_folders=True) as temp:
        codes, found, mlh = encode_path(model, images, key, batch_size, verbose)
        save_codes(
            temp, codes, mlh.bits, ids=found.ids, paths=found.paths, labels=found.labels
        )
    return len(codes), mlh.bits


def encode_path(
    model, images, key=None, batch_size=INFERENCE_BATCH_SIZE, verbose=1, what="Images"
):
    """Loads a saved model and encodes the images at a path with it.

    Args:
        model: the `.keras` file of an MLH model.
        images: an `.npy`, an `.npz` or a folder of image files (see
            `open_images`; folder images get the run's resize-and-crop).
        key: the array of an `.npz` holding the images.
        batch_size: inference batch size.
        verbose: show a progress bar.
        what: what the images are, for messages.

    Returns:
        `(codes, images, model)`: the ±1 int8 codes, the `Images` (with
        their ids, paths or labels) and the loaded `keras_mlh.MLH`.
    """
    _check_inputs(model, images, what)
    from keras_mlh.models import load_model

    mlh = load_model(model)
    found = open_images(images, mlh.image_shape, key=key, what=what, model_path=model)
    return encode_images(mlh, found, batch_size, verbose), found, mlh


def _check_inputs(model, images, what="Images"):
    """A model file and images that exist, checked before any slow import."""
    check_model_file(model, fix=MODEL_FIX)
    if not os.path.exists(images):
        raise ValueError(f"{what} not found: {images!r}.")


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
            return split_images(arrays, key or "x_query", image_shape, path)
        key = pick(
            arrays,
            (key,) if key else IMAGE_KEYS,
            path,
            "save images with np.savez(FILE, images=images) or name the array "
            "with --key.",
        )
    else:
        if not os.path.exists(path):
            raise ValueError(f"{what} not found: {path!r}.")
        raise ValueError(
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
        raise ValueError(
            f"{path!r}: {first_line(error)} (image files in a folder are resized "
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
            info = json.load(f)
    except (OSError, ValueError):
        return None
    recipe = info.get("image_recipe") if isinstance(info, dict) else None
    return ImageRecipe.resize_of_run_info(recipe)


def _folder_images(folder, image_shape, resize_to=None):
    found = image_files(folder)
    if not found:
        raise ValueError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {folder!r} "
            "or its subfolders."
        )
    images = file_images(found, image_shape, resize_to=resize_to, where=folder)
    images.paths = np.array([os.path.relpath(f, folder) for f in found])
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
    if channels not in (1, 3, 4):
        raise ValueError(
            f"The model takes {channels}-channel images; image files in "
            f"{where or 'the image files'!r} can only be read as 1 (grayscale), 3 "
            "(RGB) or 4 (RGBA) channels. Pass an .npy/.npz array instead."
        )
    try:
        check_image_files(paths)
    except ValueError as error:
        raise ValueError(first_line(error)) from None

    def chunks(size):
        from keras_mlh.datasets.image_pipeline import image_dataset, iterate_batches

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
            raise ValueError(first_line(error)) from None

    return Images(len(paths), chunks)


def split_images(arrays, key, image_shape, path):
    """The images of a split named by `key`: an array, or files by path.

    A file-backed split (`image_root` and `query_paths`, ...) names its
    images by path, read again here with the split's resize-and-crop.

    Args:
        arrays: the split file's arrays.
        key: `x_query`, `x_database` or `x_train` (or `query`, ...).
        image_shape: the model's `(height, width, channels)`.
        path: the split file, for messages.

    Returns:
        `Images`; for files with the split's labels and relative paths.
    """
    if FILE_SPLIT_KEY not in arrays:
        return array_images(arrays[key], image_shape, key, path)
    role = key[2:] if key.startswith("x_") else key
    if f"{role}_paths" not in arrays:
        roles = sorted(k[: -len("_paths")] for k in arrays if k.endswith("_paths"))
        raise ValueError(
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


def encode_images(model, images, batch_size, verbose=0, what="images"):
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
    import keras

    from keras_mlh_runtime.codes import binarize
    from keras_mlh_runtime.encoder import read_ahead

    # Whole batches per chunk: only the very last batch is partial, so the
    # progress bar can count batches.
    chunk = batch_size * -(-ENCODE_CHUNK // batch_size)
    callbacks = []
    if verbose and images.count > chunk:
        print(f"Encoding {images.count} {what}")
        bar = keras.utils.Progbar(images.count, unit_name="image")
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_predict_batch_end=lambda batch, logs: bar.update(
                    min((batch + 1) * batch_size, images.count)
                )
            )
        )

    def batches():
        for pixels in read_ahead(images.chunks(chunk), depth=2):
            for start in range(0, len(pixels), batch_size):
                yield (pixels[start : start + batch_size],)

    steps = -(-images.count // batch_size)
    outputs = model.predict(batches(), steps=steps, verbose=0, callbacks=callbacks)
    return binarize(outputs[model.retrieval_branch])

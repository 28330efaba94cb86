"""Images -> codes: `open_images` reads an `.npy`, `.npz` or image folder,
`encode_images` encodes it; `encode_path` loads a model and does both, and
`encode_file` (`keras-mlh encode`) writes the codes file.
"""

import dataclasses
import json
import os

import numpy as np

from keras_mlh import files
from keras_mlh.datasets.file_data import IMAGE_EXTENSIONS, image_files
from keras_mlh.datasets.image_pipeline import (
    check_image_files,
    image_dataset,
    iterate_batches,
)
from keras_mlh.datasets.image_recipe import ImageRecipe
from keras_mlh_runtime import code_files
from keras_mlh_runtime.codes import binarize
from keras_mlh_runtime.encoder import read_ahead
from keras_mlh_runtime.errors import first_line, validate_images

LABEL_KEYS = ("labels", "y")
INFERENCE_BATCH_SIZE = 256
ENCODE_CHUNK = 256  # images read per chunk
# A file-backed split (for folder or list-file data) names its images by
# path: `x_query` -> `query_paths`, and so on.
FILE_SPLIT_KEY = "image_root"
MODEL_FIX = "pass the model.keras of a run folder made by `keras-mlh train`"


@dataclasses.dataclass
class Images:
    """`count` images; `chunks(size)` yields them in order, `size` at a time.
    `paths` (relative), `ids` and `labels` when the source has them."""

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
    """Encodes images with a saved model into the codes file `output`, atomically.

    Args:
        model, images, key, batch_size, verbose: as in `encode_path`.
        output: `.npy` (packed codes) or `.npz` (codes, ids, bits, paths or labels).
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
        code_files.save_codes(
            temp, codes, mlh.bits, ids=found.ids, paths=found.paths, labels=found.labels
        )
    return len(codes), mlh.bits


def encode_path(
    model, images, key=None, batch_size=INFERENCE_BATCH_SIZE, verbose=1, what="Images"
):
    """Loads a saved model and encodes the images at a path with it.

    Args:
        model: the `.keras` file of an MLH model.
        images, key, what: as in `open_images`.
        batch_size: inference batch size.
        verbose: show a progress bar.

    Returns:
        `(codes, images, model)`: the ±1 int8 codes, the `Images` and the
        loaded `keras_mlh.MLH`.
    """
    _check_inputs(model, images, what)
    from keras_mlh.models import load_model

    mlh = load_model(model)
    found = open_images(images, mlh.image_shape, key=key, what=what, model_path=model)
    return encode_images(mlh, found, batch_size, verbose), found, mlh


def _check_inputs(model, images, what="Images"):
    """A model file and images that exist, checked before any slow import."""
    files.check_model_file(model, fix=MODEL_FIX)
    if not os.path.exists(images):
        raise ValueError(f"{what} not found: {images!r}.")


def open_images(path, image_shape, key=None, what="Images", model_path=None):
    """Images from an `.npy`, an `.npz` or a folder, checked against a model.

    Args:
        path: an `.npy`, an `.npz` (images under `key`, else `images`, `x` or
            `x_query`; `ids` and labels carried over) or a folder searched
            recursively for image files, resized to `image_shape`.
        image_shape: the model's `(height, width, channels)`.
        key: the array of an `.npz` holding the images.
        what: what the images are, for messages.
        model_path: the model's file; folder images get its run's resize and
            central crop.

    Returns:
        `Images`.

    Example:
    >>> images = open_images("photos/", model.image_shape)  # doctest: +SKIP
    >>> codes = encode_images(model, images, batch_size=64)  # doctest: +SKIP
    """
    if os.path.isdir(path):
        found = image_files(path)
        if not found:
            raise ValueError(
                f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {path!r} "
                "or its subfolders."
            )
        images = file_images(found, image_shape, run_resize_to(model_path), path)
        images.paths = np.array([os.path.relpath(f, path) for f in found])
        return images
    if path.lower().endswith(".npy"):
        arrays, key = {"images": code_files.load_npy(path, what)}, "images"
    elif path.lower().endswith(".npz"):
        arrays = code_files.load_npz(path, what)
        if FILE_SPLIT_KEY in arrays:
            return split_images(arrays, key or "x_query", image_shape, path)
        key = code_files.pick(
            arrays,
            (key,) if key else code_files.IMAGE_KEYS,
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
        images.ids = code_files.check_ids(arrays["ids"], images.count, path, "image")
    # Labels beside the images: `labels`/`y`, or `y_query` for `x_query`.
    label_keys = ("y" + key[1:], *LABEL_KEYS) if key.startswith("x_") else LABEL_KEYS
    label_key = next((k for k in label_keys if k in arrays), None)
    if label_key is not None and len(arrays[label_key]) == images.count:
        images.labels = arrays[label_key]
    return images


def array_images(array, image_shape, name, path):
    """`Images` of an array checked against `image_shape`; `name` and `path`
    say where it came from in messages."""
    try:
        images = validate_images(array, image_shape, name=name)
    except ValueError as error:
        raise ValueError(
            f"{path!r}: {first_line(error)} (image files in a folder are resized "
            "automatically)"
        ) from None

    return Images(
        len(images),
        lambda size: (images[i : i + size] for i in range(0, len(images), size)),
    )


def run_resize_to(model_path):
    """The `(height, width)` resized to before the crop by the run holding
    `model_path`, from its `run.json`; `None` without one, or for a plain resize."""
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


def file_images(paths, image_shape, resize_to=None, where=None):
    """`Images` of image files, every header checked before any is decoded;
    `resize_to`: the size before a central crop, `where`: for messages."""
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
    """`Images` of the split `arrays` (of the file `path`) named by `key`
    (`x_query`, `query`, ...): the array, or the files by path (with labels),
    resized and cropped as in training."""
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
    size = tuple(int(s) for s in image_shape[:2])
    resize_to = tuple(int(s) for s in arrays.get("resize_to", size))
    images = file_images(
        [os.path.join(root, p) for p in relative],
        image_shape,
        resize_to=None if resize_to == size else resize_to,
        where=path,
    )
    images.paths = np.array(relative)
    if f"y_{role}" in arrays:
        images.labels = arrays[f"y_{role}"]
    return images


def encode_images(model, images, batch_size, verbose=0, what="images"):
    """±1 int8 codes `(images.count, bits)` of all `Images`, in order.

    Args:
        model: the `keras_mlh.MLH` model.
        images: `Images`.
        batch_size: inference batch size.
        verbose: show a progress bar (when there is more than a chunk).
        what: what the images are, for the progress line.
    """
    import keras

    # One `predict` over all chunks (one per chunk would halve the throughput),
    # read ahead in a thread, two at most. Whole batches per chunk: only the
    # last batch is partial, so the progress bar can count batches.
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

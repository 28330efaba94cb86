"""Images -> codes: `open_images`, `encode_images`, both (`encode_path`), and
`encode_file` (`keras-mlh encode`), which saves them."""

import dataclasses
import json
import os

import numpy as np

from keras_mlh import files
from keras_mlh.datasets import image_pipeline
from keras_mlh.datasets.file_data import IMAGE_EXTENSIONS, image_files
from keras_mlh_runtime import code_files
from keras_mlh_runtime.codes import binarize
from keras_mlh_runtime.encoder import read_ahead
from keras_mlh_runtime.errors import first_line, validate_images

LABEL_KEYS = ("labels", "y")
INFERENCE_BATCH_SIZE = 256
FILE_SPLIT_KEY = "image_root"  # a split of image files: `query_paths`, not `x_query`
MODEL_FIX = "pass the model.keras of a run folder made by `keras-mlh train`"


@dataclasses.dataclass
class Images:
    """`count` images in order, `size` at a time by `chunks(size)`; optional data."""

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
        output: `.npy` (packed codes) or `.npz` (with ids, paths or labels).

    Returns:
        `(count, bits)` of the codes written.

    Example:
    >>> encode_file("run/model.keras", "photos/", "codes.npz")  # doctest: +SKIP
    """
    if not output.lower().endswith((".npy", ".npz")):
        raise ValueError(f"The codes file must end in .npy or .npz; got {output!r}.")
    _check_inputs(model, images)
    # Codes written among the images would be read as part of them.
    files.check_output(output, [model, images], overwrite, not_inside=[images])
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
    """Loads a saved model (`.keras` file) and encodes the images at a path.

    Args:
        images, key, what: as in `open_images`.

    Returns:
        `(codes, images, model)`: ±1 int8 codes, the `Images`, the loaded MLH.

    Example:
    >>> codes, images, mlh = encode_path("run/model.keras", "x.npy")  # doctest: +SKIP
    """
    _check_inputs(model, images, what)
    from keras_mlh.models import load_model

    mlh = load_model(model)
    found = open_images(images, mlh.image_shape, key=key, what=what, model_path=model)
    return encode_images(mlh, found, batch_size, verbose), found, mlh


def _check_inputs(model, images, what="Images"):
    files.check_model_file(model, fix=MODEL_FIX)  # before any slow import
    if not os.path.exists(images):
        raise ValueError(f"{what} not found: {images!r}.")


def open_images(path, image_shape, key=None, what="Images", model_path=None):
    """`Images` from an `.npy`, an `.npz` or a folder, checked against a model.

    Args:
        key: the `.npz` array of the images.
        what: what the images are, for messages.
        model_path: folder images get the resize and central crop of its run.

    Example:
    >>> images = open_images("photos/", model.image_shape)  # doctest: +SKIP
    """
    if os.path.isdir(path):
        found = [os.path.relpath(f, path) for f in image_files(path)]
        if not found:
            raise ValueError(
                f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {path!r} "
                "or its subfolders."
            )
        return file_images(found, image_shape, run_resize_to(model_path), path)
    if path.lower().endswith(".npy"):
        arrays = {"images": code_files.load_npy(path, what)}
        return split_images(arrays, "images", image_shape, path)
    if path.lower().endswith(".npz"):
        return split_images(code_files.load_npz(path, what), key, image_shape, path)
    raise ValueError(
        f"{what} must be an .npy or .npz file or a folder of image files; got {path!r}."
    )


def split_images(arrays, key, image_shape, path):
    """`Images` of an `.npz`'s array `key`, or of a split's files (`query_paths`)."""
    if FILE_SPLIT_KEY in arrays:
        role = (key or "x_query").removeprefix("x_")
        if f"{role}_paths" not in arrays:
            roles = sorted(k[: -len("_paths")] for k in arrays if k.endswith("_paths"))
            raise ValueError(
                f"{path!r} is a file-backed split of {', '.join(roles)} images; "
                f"--key {key!r} names none of them (use x_{roles[0]})."
            )
        size = tuple(int(s) for s in image_shape[:2])
        resize_to = tuple(int(s) for s in arrays.get("resize_to", size))
        resize_to = None if resize_to == size else resize_to
        paths, root = arrays[f"{role}_paths"].astype(str), str(arrays[FILE_SPLIT_KEY])
        images = file_images(paths, image_shape, resize_to, root)
        images.labels = arrays.get(f"y_{role}")
        return images
    fix = "save images with np.savez(FILE, images=images) or name the array with --key."
    key = code_files.pick(arrays, (key,) if key else code_files.IMAGE_KEYS, path, fix)
    try:
        pixels = validate_images(arrays[key], image_shape, name=key)
    except ValueError as error:
        raise ValueError(
            f"{path!r}: {first_line(error)} (image files in a folder are resized "
            "automatically)"
        ) from None
    count = len(pixels)
    images = Images(count, lambda n: (pixels[i : i + n] for i in range(0, count, n)))
    if "ids" in arrays:
        images.ids = code_files.check_ids(arrays["ids"], count, path, "image")
    label_keys = ("y" + key[1:], *LABEL_KEYS) if key.startswith("x_") else LABEL_KEYS
    labels = next((arrays[k] for k in label_keys if k in arrays), None)
    if labels is not None and len(labels) == count:
        images.labels = labels
    return images


def run_resize_to(model_path):
    """The resize before the crop of the run of `model_path`, or `None`."""
    try:
        with open(os.path.join(os.path.dirname(model_path), "run.json")) as f:
            size = json.load(f)["image_recipe"]["resize_to"]
    except (OSError, ValueError, KeyError, TypeError):  # no model_path, or no run's
        return None
    valid = isinstance(size, list) and len(size) == 2
    return tuple(size) if valid and all(isinstance(s, int) for s in size) else None


def file_images(paths, image_shape, resize_to=None, root=None):
    """`Images` of image files (under `root`), every header checked first."""
    height, width, channels = image_shape
    if channels not in (1, 3, 4):
        raise ValueError(
            f"The model takes {channels}-channel images; image files read as 1, 3 "
            "or 4 channels. Pass an .npy/.npz array instead."
        )
    found = paths if root is None else [os.path.join(root, p) for p in paths]
    for path in found:
        image_pipeline.check_image_file(path)

    def chunks(size):
        dataset = image_pipeline.image_dataset(
            found, None, (height, width), channels, size, resize_to=resize_to
        )
        yield from image_pipeline.iterate_batches(dataset)

    return Images(len(found), chunks, None if root is None else np.asarray(paths))


def encode_images(model, images, batch_size, verbose=0, what="images"):
    """±1 int8 codes `(images.count, bits)` of all `Images`, in order.

    Args:
        verbose: show a progress bar (for more than one batch).
        what: what the images are, for the progress line.

    Example:
    >>> codes = encode_images(model, open_images("x.npy", (28, 28, 1)), 256)  # doctest: +SKIP
    """
    import keras

    callbacks = []
    if verbose and images.count > batch_size:
        print(f"Encoding {images.count} {what}")
        bar = keras.utils.Progbar(images.count, unit_name="image")

        def update(batch, logs):
            bar.update(min((batch + 1) * batch_size, images.count))

        callbacks.append(keras.callbacks.LambdaCallback(on_predict_batch_end=update))
    # One `predict` over all batches: one per batch would halve the throughput.
    batches = ((pixels,) for pixels in read_ahead(images.chunks(batch_size), depth=2))
    steps = -(-images.count // batch_size)
    outputs = model.predict(batches, steps=steps, verbose=0, callbacks=callbacks)
    return binarize(outputs[model.retrieval_branch])

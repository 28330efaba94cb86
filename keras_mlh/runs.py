"""The run folder of `keras-mlh train`: its files, written and read here.

A run folder holds `model.keras` (the model kept), `history.json` (per-epoch
logs), `split.npz` (the evaluation split: pixels, or for image files paths
relative to `image_root` with the image recipe; see `split_arrays`) and
`run.json` (`RUN_FORMAT`: the settings, data source, image recipe and the
model selection by validation mAP). `keras-mlh evaluate` reads it back.
"""

import json
import os

import numpy as np

from keras_mlh.encoding import FILE_SPLIT_KEY
from keras_mlh_runtime.code_files import load_npz

RUN_FORMAT = "keras-mlh-run"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.npz"
RUN_FILE = "run.json"
SPLIT_KEYS = ("x_query", "y_query", "x_database", "y_database")
FILE_SPLIT_KEYS = ("query_paths", "y_query", "database_paths", "y_database")


def split_arrays(data, validation=None, unseen_classes=None):
    """What the run folder's `split.npz` holds for `data`.

    Array-backed data keeps its pixels (`x_query`, `x_database`, ...);
    file-backed data (folders, list files) only paths relative to
    `image_root`, the labels and the image recipe, so `evaluate`, `encode`
    and `export --sample-images` read the files again. When the training set
    is not the database (list files), it is recorded too.

    Args:
        data: a `HashingData` or `FileHashingData` (the training set is the
            one trained on).
        validation: the `--val-split` `ValidationSplit`, or `None`: its
            held-out images are recorded (`val_paths`, or `val_indices` into
            the original training set for arrays).
        unseen_classes: the `--unseen-classes` ids, or `None`.

    Returns:
        A dict of name -> array for `save_npz`.
    """
    from keras_mlh.datasets import FileHashingData

    split = {"num_classes": np.int64(data.num_classes)}
    if isinstance(data, FileHashingData):
        roles = ["query", "database"]
        if not same_files(data.train_paths, data.database_paths):
            roles.append("train")
        split["image_root"] = np.array(data.image_root)
        for role in roles:
            paths = getattr(data, f"{role}_paths")
            split[f"{role}_paths"] = np.array(
                [os.path.relpath(p, data.image_root) for p in paths]
            )
            split[f"y_{role}"] = getattr(data, f"y_{role}")
        split["image_size"] = np.array(data.image_size, dtype=np.int64)
        split["color_mode"] = np.array(data.color_mode)
        if data.resize_to is not None:
            split["resize_to"] = np.array(data.resize_to, dtype=np.int64)
    else:
        for role in ("query", "database"):
            split[f"x_{role}"] = getattr(data, f"x_{role}")
            split[f"y_{role}"] = getattr(data, f"y_{role}")
    if data.class_names is not None:
        split["class_names"] = np.array([str(n) for n in data.class_names])
    if validation is not None:
        split["val_indices"] = validation.indices
        if isinstance(data, FileHashingData):
            split["val_paths"] = np.array(
                [os.path.relpath(p, data.image_root) for p in validation.paths]
            )
    if unseen_classes:
        split["unseen_classes"] = np.array(unseen_classes, dtype=np.int64)
    return split


def same_files(a, b):
    """Whether two lists of image paths are the same files in the same order."""
    return len(a) == len(b) and bool(np.all(np.asarray(a) == np.asarray(b)))


def load_split(path):
    """The arrays of a split file, checked for the four evaluation arrays.

    Args:
        path: an `.npz` such as a run folder's `split.npz`: pixels
            (`x_query`, ...) or, for file-backed data, paths relative to
            `image_root` (`query_paths`, ...).

    Returns:
        A dict of name -> array.
    """
    arrays = load_npz(path, "Evaluation data")
    keys = FILE_SPLIT_KEYS if FILE_SPLIT_KEY in arrays else SPLIT_KEYS
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(
            f"{path!r} lacks {', '.join(missing)}: evaluation needs "
            f"{', '.join(keys)}, as in the split.npz of a run folder."
        )
    for side in ("query", "database"):
        name = f"{side}_paths" if FILE_SPLIT_KEY in arrays else f"x_{side}"
        images, labels = arrays[name], arrays[f"y_{side}"]
        if labels.ndim == 0 or images.ndim == 0 or len(labels) != len(images):
            raise ValueError(
                f"{path!r}: y_{side} has {labels.shape[0] if labels.ndim else 0} "
                f"labels but {name} {images.shape[0] if images.ndim else 0} "
                "images; give one label (or multi-hot row) per image."
            )
    return arrays


def history_file(run_folder):
    return os.path.join(run_folder, HISTORY_FILE) if run_folder else None


def load_history(run_folder):
    """The run's per-epoch logs to plot, or `None` without a run folder."""
    path = history_file(run_folder)
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            history = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot read the training history {path!r}: {error}"
        ) from None
    if not isinstance(history, dict) or not all(
        isinstance(v, list) for v in history.values()
    ):
        raise ValueError(
            f"{path!r} is not a training history (a JSON object of per-epoch "
            "lists, as `keras-mlh train` writes)."
        )
    return history


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

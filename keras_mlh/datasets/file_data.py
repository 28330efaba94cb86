"""`FileHashingData` and `from_files`: a hashing split of image files, streamed.

The file-backed twin of `HashingData`: it holds paths and labels, never
pixels, and its `tf.data` views read, decode, resize and augment the files on
the fly (`keras_mlh.datasets.image_pipeline`). Memory does not grow with the
number of images beyond a few bytes of path per image.
"""

import dataclasses
import os

import numpy as np

from keras_mlh.datasets.hashing_data import (
    SplitViews,
    check_class_names,
    split_indices,
)
from keras_mlh.datasets.image_check import check_image_files
from keras_mlh.datasets.image_pipeline import (
    COLOR_CHANNELS,
    image_dataset,
    iterate_batches,
)
from keras_mlh.labels import check_labels, infer_num_classes


def _view(part, doc):
    """A property: the batched view of one part, `FileHashingData.dataset`'s."""

    def view(self):
        paths, labels = getattr(self, f"{part}_paths"), getattr(self, f"y_{part}")
        return self.dataset(paths, labels, training=part == "train")

    return property(view, doc=doc)


@dataclasses.dataclass
class FileHashingData(SplitViews):
    """Image files and labels split the deep-hashing way: train, query, database.

    The fields are those of `HashingData` with absolute paths instead of
    pixels (`train_paths`, `query_paths`, `database_paths`) and the image
    recipe of `from_files` (`image_size`, `color_mode`, `resize_to`,
    `horizontal_flip`); `image_root` is the folder the paths are recorded
    against in a run folder, and `list_files` (data from list files) maps each
    list file's name to its `{"path", "sha256", "images"}`.

    Example:
    >>> data = keras_mlh.datasets.from_directory("photos/", image_size=(64, 64))  # doctest: +SKIP
    >>> model.fit(data.train, epochs=15)  # doctest: +SKIP
    """

    train_paths: np.ndarray
    y_train: np.ndarray
    query_paths: np.ndarray
    y_query: np.ndarray
    database_paths: np.ndarray
    y_database: np.ndarray
    num_classes: int
    class_names: list | None = None
    image_size: tuple = (64, 64)
    color_mode: str = "rgb"
    resize_to: tuple | None = None
    horizontal_flip: bool = False
    image_root: str | None = None
    batch_size: int = 64
    seed: int = 0
    list_files: dict | None = None

    @property
    def channels(self):
        return COLOR_CHANNELS[self.color_mode]

    @property
    def image_shape(self):
        return (*(int(s) for s in self.image_size), self.channels)

    train = _view("train", "Shuffled (each epoch), augmented `(images, labels)`.")
    query = _view("query", "The queries' `(images, labels)`, in order.")
    database = _view("database", "The database's `(images, labels)`, in order.")

    def dataset(self, paths, labels=None, training=False):
        """A batched stream of any files (and labels) with this data's recipe;
        `training` shuffles and augments (random crop and flip)."""
        return image_dataset(
            paths,
            labels,
            image_size=self.image_size,
            channels=self.channels,
            batch_size=self.batch_size,
            training=training,
            resize_to=self.resize_to,
            horizontal_flip=self.horizontal_flip,
            seed=self.seed,
        )

    # Whole sets decoded into memory (small sets only), as `HashingData` has.
    x_train = property(lambda self: self.load_images(self.train_paths))
    x_query = property(lambda self: self.load_images(self.query_paths))
    x_database = property(lambda self: self.load_images(self.database_paths))

    def load_images(self, paths):
        """`paths` decoded (evaluation recipe) into uint8 `(n, h, w, c)`."""
        batches = list(iterate_batches(self.dataset(paths)))
        if not batches:
            return np.zeros((0, *self.image_shape), np.uint8)
        return np.concatenate(batches)


def from_files(
    paths,
    labels,
    num_classes=None,
    num_queries=0.2,
    image_size=(64, 64),
    color_mode="rgb",
    resize_to=None,
    horizontal_flip=False,
    seed=0,
    batch_size=64,
    class_names=None,
    image_root=None,
):
    """Splits image files into queries and a database that is trained on.

    The file-backed `from_arrays`: the same seeded split, with paths instead
    of pixels. Every file's header is checked first, so a missing or foreign
    file fails before training.

    Args:
        paths: image files (any format Pillow reads).
        labels, num_classes, num_queries, class_names: as in `from_arrays`.
        image_size: `(height, width)` of the images the model gets.
        color_mode: `"rgb"`, `"grayscale"` or `"rgba"`.
        resize_to: optional `(height, width)` to resize to before cropping
            `image_size` (random crop in training, central otherwise).
        horizontal_flip: random left-right flips in training.
        seed: seed of the split, the training shuffle and the augmentation.
        batch_size: batch size of the `tf.data` views.
        image_root: the folder paths are recorded against in a run folder
            (default: their common folder).

    Returns:
        A `FileHashingData`.

    Example:
    >>> data = from_files(["a/1.jpg", "a/2.jpg", "b/3.jpg"], [0, 0, 1],  # doctest: +SKIP
    ...                   num_queries=1, image_size=(32, 32))
    >>> model.fit(data.train, epochs=1)  # doctest: +SKIP
    """
    paths = np.asarray([os.path.abspath(os.fspath(p)) for p in paths])
    labels = np.asarray(labels)
    if len(paths) == 0:
        raise ValueError("`paths` is empty: pass at least two image files.")
    if num_classes is None:
        num_classes = infer_num_classes(labels)
    labels = check_labels(labels, num_classes, num_images=len(paths))
    class_names = check_class_names(class_names, num_classes)
    options = image_options(image_size, color_mode, resize_to, horizontal_flip)
    check_image_files(paths)
    if image_root is None:  # the deepest folder holding every path
        image_root = os.path.commonpath(list(paths))
        image_root = os.path.dirname(image_root) if image_root in paths else image_root
    query_idx, database_idx = split_indices(labels, num_queries, seed)
    return FileHashingData(
        train_paths=paths[database_idx],
        y_train=labels[database_idx],
        query_paths=paths[query_idx],
        y_query=labels[query_idx],
        database_paths=paths[database_idx],
        y_database=labels[database_idx],
        num_classes=int(num_classes),
        class_names=class_names,
        image_root=os.path.abspath(image_root),
        batch_size=batch_size,
        seed=seed,
        **options,
    )


def image_options(image_size, color_mode, resize_to, horizontal_flip):
    """The image recipe's arguments, checked, as `FileHashingData` fields."""
    sizes = {"image_size": image_size, "resize_to": resize_to}
    for name, size in sizes.items():
        if size is None and name == "resize_to":
            continue
        size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        if len(size) != 2 or not all(isinstance(s, (int, np.integer)) for s in size):
            raise ValueError(f"`{name}` must be (height, width). Received: {size!r}")
        if min(size) < 1:
            raise ValueError(f"`{name}` must be positive. Received: {size!r}")
        sizes[name] = tuple(int(s) for s in size)
    if color_mode not in COLOR_CHANNELS:
        raise ValueError(
            f"`color_mode` must be one of {sorted(COLOR_CHANNELS)}. "
            f"Received: {color_mode!r}"
        )
    return dict(sizes, color_mode=color_mode, horizontal_flip=bool(horizontal_flip))

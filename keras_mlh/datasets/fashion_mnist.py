"""Fashion-MNIST from its four idx files, offline: 70,000 photographs of clothing."""

import gzip
import os

import numpy as np

from keras_mlh.datasets.hashing_data import HashingData, split_indices, validate_images

# Where Debian's `dataset-fashion-mnist` package installs the idx files.
DEFAULT_PATH = "/usr/share/datasets/fashion-mnist"
_NAMES = "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot"
CLASS_NAMES = tuple(_NAMES.split(","))


def read_idx(path):
    """The uint8 array of one idx file (LeCun's MNIST format), gzip or not."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise ValueError(
                f"{path}: damaged gzip file ({error}); reinstall the data set."
            ) from None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] != 0x08 or not 1 <= raw[3] <= 4:
        raise ValueError(
            f"{path}: not a uint8 idx file (LeCun's MNIST format); give the folder "
            "of the four Fashion-MNIST idx files."
        )
    header = 4 + 4 * raw[3]
    if len(raw) < header:
        raise ValueError(
            f"{path}: {len(raw)} bytes, shorter than its {header}-byte header; the "
            "file is truncated."
        )
    shape = np.frombuffer(raw[4:header], ">u4").tolist()
    if len(raw) != header + int(np.prod(shape)):
        raise ValueError(
            f"{path}: {len(raw)} bytes do not hold the shape {shape} its header "
            "announces; the file is truncated or damaged."
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _find(folder, name):
    for path in (os.path.join(folder, name + end) for end in ("", ".gz")):
        if os.path.isfile(path):
            return path
    raise ValueError(
        f"Fashion-MNIST file {name}[.gz] not found in {folder!r}: install Debian's "
        "package (apt-get install dataset-fashion-mnist) or give the folder that "
        "holds the four idx files."
    )


def fashion_mnist(path=None, num_queries=None, seed=0, batch_size=64):
    """Fashion-MNIST from its idx files: 60,000 training images, test queries.

    Args:
        path: the folder of the four idx files (default: Debian's package's).
        num_queries: `None` for all test images, else a count of them.

    Returns:
        A `HashingData`.

    Example:
    >>> data = fashion_mnist(num_queries=1000)  # doctest: +SKIP
    """
    folder = DEFAULT_PATH if path is None else os.fspath(path)
    splits = []
    for prefix in ("train", "t10k"):
        image_file = _find(folder, f"{prefix}-images-idx3-ubyte")
        label_file = _find(folder, f"{prefix}-labels-idx1-ubyte")
        images, labels = read_idx(image_file), read_idx(label_file)
        shapes = (images.ndim, labels.ndim, len(labels))
        if shapes != (3, 1, len(images)) or labels.max(initial=0) >= len(CLASS_NAMES):
            raise ValueError(
                f"{image_file} {images.shape} and {label_file} {labels.shape}, labels "
                f"up to {labels.max(initial=0)}: not one 2-D image per label in 0-9."
            )
        images = validate_images(images, name=image_file)  # no image: refused
        splits.append((images, labels.astype(np.int64)))
    (x_train, y_train), (x_test, y_test) = splits
    if num_queries is not None:
        picked, _ = split_indices(y_test, num_queries, seed)
        x_test, y_test = x_test[picked], y_test[picked]
    return HashingData(
        x_train=x_train, y_train=y_train, x_database=x_train, y_database=y_train,
        x_query=x_test, y_query=y_test, num_classes=len(CLASS_NAMES),
        class_names=list(CLASS_NAMES), batch_size=batch_size, seed=seed,
    )  # fmt: skip

"""`from_list_files`: the field's list files (HashNet / DeepHash-pytorch format).

One image a line, `relative/path.jpg 0 1 0 0 1 ...`: a path (no spaces) and a
multi-hot label vector. Every line is checked before training.
"""

import collections
import hashlib
import os

import numpy as np

from keras_mlh.datasets.file_data import FileHashingData, image_options
from keras_mlh.datasets.hashing_data import check_class_names
from keras_mlh.datasets.image_pipeline import check_image_file

LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt"}


def read_list_file(path, image_root, num_labels=None):
    """`(absolute paths, uint8 multi-hot rows, record)` of one list file,
    checked line by line; `num_labels=None` takes the width of most rows."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ValueError(f"list file not found: {path!r}") from None
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ValueError(f"{path} line {line}: not UTF-8 text") from None
    except OSError as error:
        raise ValueError(f"cannot read list file {path!r}: {error}") from None
    lines = text.splitlines()
    if num_labels is None:  # the width of most rows, so one odd row is the one named
        widths = collections.Counter(len(line.split()) - 1 for line in lines)
        widths.pop(-1, None)  # blank lines
        num_labels = widths.most_common(1)[0][0] if widths else None
    # One uint8 per label: 13 MB for 130,000 x 100.
    rows = np.zeros((len(lines), num_labels or 0), dtype=np.uint8)
    paths, first_line_of = [], {}
    for number, line in enumerate(lines, start=1):
        tokens = line.split()
        if not tokens:
            continue  # blank lines, e.g. a trailing one
        where = f"{path} line {number}"
        if len(tokens) < 2:
            raise ValueError(
                f"{where}: expected 'relative/path.jpg 0 1 0 ...' (a path and its "
                f"multi-hot labels), got {line.strip()[:80]!r}"
            )
        labels = tokens[1:]
        if len(labels) != num_labels:
            raise ValueError(
                f"{where}: {len(labels)} labels, expected {num_labels} like the "
                "other rows (a multi-hot vector per line; paths cannot contain "
                "spaces)"
            )
        bad = next((t for t in labels if t not in ("0", "1")), None)
        if bad is not None:
            raise ValueError(f"{where}: label {bad!r} is not 0 or 1 (multi-hot rows)")
        if "1" not in labels:  # in test.txt too: it made single-label multi-label
            raise ValueError(
                f"{where}: the image {tokens[0]!r} has no label (all zeros); every "
                "image needs at least one class: fix the row or remove the line"
            )
        name = tokens[0]
        if name in first_line_of:
            raise ValueError(
                f"{where}: duplicate path {name!r} (first on line "
                f"{first_line_of[name]}); remove one of the two lines"
            )
        first_line_of[name] = number
        full = os.path.normpath(os.path.join(image_root, name))
        try:
            check_image_file(full)
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        rows[len(paths)] = [t == "1" for t in labels]
        paths.append(full)
    if not paths:
        raise ValueError(f"list file {path!r} is empty: it lists no image")
    digest = hashlib.sha256(raw).hexdigest()
    record = {"path": os.path.abspath(path), "sha256": digest, "images": len(paths)}
    return np.asarray(paths), rows[: len(paths)], record


def from_list_files(
    directory,
    image_root=None,
    image_size=(224, 224),
    color_mode="rgb",
    resize_to=None,
    horizontal_flip=False,
    class_names=None,
    seed=0,
    batch_size=64,
):
    """Train, query and database sets from the field's list files
    (`train.txt`, `test.txt`: the queries, `database.txt` in `directory`),
    streamed; a `ValueError` names the list file and line of a problem.

    Args:
        image_root: the folder the listed paths resolve against (default:
            `directory`).
        class_names: optional names, one per label column.
        image_size, color_mode, resize_to, horizontal_flip, seed, batch_size:
            as in `from_files`.

    Returns:
        A `FileHashingData` (class ids when every row has exactly one 1,
        multi-hot rows otherwise); `list_files` records each list file.

    Example:
    >>> data = from_list_files("lists/cifar10", image_root="images/cifar10",  # doctest: +SKIP
    ...                        image_size=(224, 224), resize_to=(256, 256))
    """
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise ValueError(f"List folder not found: {directory!r}")
    image_root = os.path.abspath(image_root or directory)
    if not os.path.isdir(image_root):
        raise ValueError(f"Image root folder not found: {image_root!r}")
    sets, records, num_labels = {}, {}, None
    for role, name in LIST_FILES.items():
        path = os.path.join(directory, name)
        paths, labels, records[name] = read_list_file(path, image_root, num_labels)
        num_labels = labels.shape[1]
        sets[role] = (paths, labels)
    # Class ids when every row of every file has exactly one 1.
    single = all((labels.sum(axis=1) == 1).all() for _, labels in sets.values())
    split = {}
    for role, (paths, labels) in sets.items():
        split[f"{role}_paths"] = paths
        ids = np.argmax(labels, axis=1).astype(np.int64)
        split[f"y_{role}"] = ids if single else labels.astype(np.float32)
    return FileHashingData(
        **split,
        num_classes=int(num_labels),
        class_names=check_class_names(class_names, num_labels),
        image_root=image_root,
        **image_options(image_size, color_mode, resize_to, horizontal_flip),
        batch_size=batch_size,
        seed=seed,
        list_files=records,
    )

"""Image files, class folders or list files as `FileHashingData` (paths, labels)."""

import collections
import dataclasses
import hashlib
import os

import numpy as np

from keras_mlh.datasets.hashing_data import SplitData, check_class_names, split_fields
from keras_mlh.datasets.image_pipeline import (
    COLOR_CHANNELS,
    check_image_file,
    image_dataset,
)

# What `from_directory` and the command line read as images.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
# The field's list files (HashNet / DeepHash-pytorch): `path 0 1 0 ...` lines.
LIST_FILES = {"train": "train.txt", "query": "test.txt", "database": "database.txt"}


@dataclasses.dataclass(kw_only=True)
class FileHashingData(SplitData):
    """Image files (absolute `*_paths`), their recipe and `list_files` records.

    Example:
    >>> model.fit(from_directory("photos/").train, epochs=15)  # doctest: +SKIP
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
        recipe["channels"] = COLOR_CHANNELS[self.color_mode]
        return image_dataset(paths, labels, training=training, **recipe)

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
    """Splits image files as `from_arrays` splits arrays, every header checked.

    Args:
        image_size: `(height, width)` of the images the model gets.
        color_mode: `"rgb"`, `"grayscale"` or `"rgba"`.
        resize_to: the size to resize to before cropping `image_size`, or `None`.
        horizontal_flip: random left-right flips in training.
        image_root: the folder a run records paths against (default: theirs).

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
        paths, labels, num_classes, num_queries, seed, class_names, "{}_paths"
    )
    options = image_options(image_size, color_mode, resize_to, horizontal_flip)
    for path in paths:
        check_image_file(path)
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
    """The image options, checked, as `FileHashingData` fields."""
    sizes = {"image_size": image_size, "resize_to": resize_to}
    for name, size in sizes.items():
        if size is None and name == "resize_to":
            continue
        size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
        ints = all(isinstance(s, (int, np.integer)) and s > 0 for s in size)
        if len(size) != 2 or not ints:
            raise ValueError(f"`{name}` must be positive (height, width): {size!r}")
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
    """A folder of one image subfolder per class, split by `from_files` (kwargs).

    Returns:
        A `FileHashingData` whose `class_names` are the subfolder names.

    Example:
    >>> data = from_directory("photos/", image_size=(64, 64))  # doctest: +SKIP
    """
    folders = next(os.walk(directory), (None, [], []))[1]  # none if not found
    class_dirs = sorted(d for d in folders if d[0] != ".")
    found = [image_files(os.path.join(directory, name)) for name in class_dirs]
    paths = [path for files in found for path in files]
    if not paths:
        raise ValueError(
            f"Image folder not found, or no class subfolders with images "
            f"({', '.join(IMAGE_EXTENSIONS)}): {directory!r}; put each class's "
            "images in its own subfolder, e.g. DIR/cat/1.jpg, DIR/dog/2.jpg."
        )
    labels = np.repeat(np.arange(len(found)), [len(files) for files in found])
    named = {"class_names": class_dirs, "image_root": os.path.abspath(directory)}
    return from_files(paths, labels, len(class_dirs), **kwargs, **named)


def read_list_file(path, image_root, num_labels, checked):
    """`(absolute paths, uint8 multi-hot rows, record)` of one list file, checked;
    `num_labels=None`: most rows' width; `checked`: the image files checked."""
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
        name, labels = tokens[0], tokens[1:]
        bad = next((t for t in labels if t not in ("0", "1")), None)
        full = os.path.normpath(os.path.join(image_root, name))
        try:
            if not labels:
                raise ValueError(
                    "expected 'relative/path.jpg 0 1 0 ...' (a path and its "
                    f"multi-hot labels), got {line.strip()[:80]!r}"
                )
            if len(labels) != num_labels:
                raise ValueError(
                    f"{len(labels)} labels, expected {num_labels} like the other "
                    "rows (a multi-hot vector per line; paths cannot contain spaces)"
                )
            if bad is not None:
                raise ValueError(f"label {bad!r} is not 0 or 1 (multi-hot rows)")
            if "1" not in labels:  # in test.txt too: it made single-label multi-label
                raise ValueError(
                    f"the image {name!r} has no label (all zeros); every image "
                    "needs at least one class: fix the row or remove the line"
                )
            if full in first_line_of:  # `a.png` and `./a.png` too
                raise ValueError(
                    f"duplicate path {name!r} (first on line {first_line_of[full]}); "
                    "remove one of the two lines"
                )
            if full not in checked:  # listed in train.txt and database.txt
                check_image_file(full)
                checked.add(full)
        except ValueError as error:
            raise ValueError(f"{path} line {number}: {error}") from None
        first_line_of[full] = number
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
    """The sets of `directory`'s `train.txt`, `test.txt` (queries), `database.txt`.

    Args:
        image_root: the folder of the listed paths (default: `directory`).
        class_names: optional names, one per label column.

    Returns:
        A `FileHashingData`: class ids if every row has one 1, else multi-hot.

    Example:
    >>> data = from_list_files("lists/cifar10", image_root="images/cifar10",  # doctest: +SKIP
    ...                        image_size=(224, 224), resize_to=(256, 256))
    """
    image_root = os.path.abspath(image_root or directory)
    fields, records, num_labels, checked = {}, {}, None, set()
    for role, name in LIST_FILES.items():
        path = os.path.join(directory, name)
        read = read_list_file(path, image_root, num_labels, checked)
        fields[f"{role}_paths"], fields[f"y_{role}"], records[name] = read
        num_labels = fields[f"y_{role}"].shape[1]
    # Class ids when every row of every file has exactly one 1.
    single = all((fields[f"y_{r}"].sum(axis=1) == 1).all() for r in LIST_FILES)
    for key in (f"y_{role}" for role in LIST_FILES):
        rows = fields[key]
        fields[key] = rows.argmax(axis=1) if single else rows.astype(np.float32)
    return FileHashingData(
        **fields,
        num_classes=int(num_labels),
        class_names=check_class_names(class_names, num_labels),
        image_root=image_root,
        **image_options(image_size, color_mode, resize_to, horizontal_flip),
        batch_size=batch_size,
        seed=seed,
        list_files=records,
    )

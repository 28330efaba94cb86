"""Which training data a run uses: the rules of `keras-mlh train`'s sources."""

import inspect
import os

from keras_mlh.datasets.hashing_data import from_arrays
from keras_mlh.datasets.image_recipe import SMALL_BACKBONE, ImageRecipe
from keras_mlh.datasets.tfds_data import from_tfds
from keras_mlh.encoding import LABEL_KEYS
from keras_mlh_runtime.code_files import IMAGE_KEYS, load_npz, pick


def _default(function, name):
    return inspect.signature(function).parameters[name].default


# The loaders' own defaults, where a source leaves them in place.
NUM_QUERIES = _default(from_arrays, "num_queries")
TFDS_NUM_QUERIES = _default(from_tfds, "max_queries")
TFDS_IMAGE_SIZE = _default(from_tfds, "image_size")
TFDS_TRAIN_SPLIT = _default(from_tfds, "train_split")
TFDS_QUERY_SPLIT = _default(from_tfds, "query_split")
BATCH_SIZE = _default(from_arrays, "batch_size")


def training_data(
    npz=None,
    folder=None,
    lists=None,
    fashion_mnist=None,
    tfds=None,
    *,
    backbone=SMALL_BACKBONE,
    image_size=None,
    resize_size=None,
    flip=None,
    image_root=None,
    color_mode="rgb",
    num_queries=None,
    limit=None,
    seed=0,
    batch_size=BATCH_SIZE,
    tfds_train_split=TFDS_TRAIN_SPLIT,
    tfds_query_split=TFDS_QUERY_SPLIT,
    tfds_data_dir=None,
    unseen_classes=None,
):
    """The training data of a run, split into queries and database; checks
    that the options given apply to the source chosen.

    Args:
        npz, folder, lists, fashion_mnist, tfds: at most one source: an `.npz`
            with `images`/`x` and `labels`/`y` (optional `class_names`), a
            folder of class subfolders, a folder with `train.txt`, `test.txt`
            and `database.txt`, Fashion-MNIST's idx files, a tfds name. None:
            the MNIST-5k digits.
        backbone: `"small"` or a Keras Applications name: its image recipe.
        image_size, resize_size, flip, color_mode: how image files (and for
            `image_size` tfds) are read.
        image_root: the folder the paths of `lists` resolve against.
        num_queries: query images, a count or a fraction (default 1000; with
            tfds a count from the query split; Fashion-MNIST: of its test set).
        limit: train on a seeded sample of this many images (arrays), or the
            first ones of a tfds split.
        seed, batch_size: seed of the split (and sample); training batch size.
        tfds_train_split, tfds_query_split, tfds_data_dir: for `tfds`.
        unseen_classes: class ids or names (strings) left out of training.

    Returns:
        `(data, source)`: a `HashingData` (or `FileHashingData`,
        `TfdsHashingData`) and a JSON-safe description of the source.

    Example:
    >>> data, source = training_data(limit=500, num_queries=100)
    >>> source, len(data.y_query)
    ({'kind': 'mnist5k', 'limit': 500}, 100)
    """
    _check_image_options(folder, lists, tfds, image_size, resize_size, flip, image_root)
    split = {"seed": seed, "batch_size": batch_size}
    recipe = ImageRecipe.for_backbone(
        backbone, image_size=image_size, resize_to=resize_size, horizontal_flip=flip
    )
    files = {"color_mode": color_mode, **recipe.kwargs(), **split}
    if tfds:
        data, source = _tfds(tfds, image_size, num_queries, limit, split, tfds_data_dir,
                             tfds_train_split, tfds_query_split)  # fmt: skip
    elif lists:
        data, source = _lists(lists, image_root, limit, num_queries, files)
    elif folder:
        data, source = _folder(folder, limit, num_queries, files)
    elif fashion_mnist:
        data, source = _fashion_mnist(fashion_mnist, limit, num_queries, split)
    else:
        data, source = _arrays(npz, limit, num_queries, split)
    if limit is not None:
        source["limit"] = limit
    if unseen_classes:
        from keras_mlh.datasets.holdout import class_ids_of, drop_classes

        try:
            ids = class_ids_of(list(unseen_classes), data.num_classes, data.class_names)
            data, source["unseen_classes"] = drop_classes(data, ids), ids
        except ValueError as error:
            raise ValueError(f"--unseen-classes: {error}") from None
    return data, source


def _check_image_options(folder, lists, tfds, image_size, resize, flip, root):
    """Refuses the image-file options with a source they do not apply to."""
    if image_size is not None and not (folder or tfds or lists):
        raise ValueError(
            "--image-size applies to --folder, --lists and --tfds data; arrays "
            "(mnist5k, --npz) are used at their own size."
        )
    if root and not lists:
        raise ValueError("--image-root applies to --lists data.")
    if (resize or flip) and not (folder or lists):
        raise ValueError(
            "--resize-size and --flip apply to image files (--folder, --lists)."
        )


def _tfds(name, image_size, num_queries, limit, split, data_dir, train, query):
    from keras_mlh import datasets  # looked up here: tests replace `from_tfds`

    if isinstance(num_queries, float):
        raise ValueError(
            "With --tfds the queries come from the query split: give "
            f"--num-queries as a count (default {TFDS_NUM_QUERIES})."
        )
    data = datasets.from_tfds(
        name,
        train_split=train,
        query_split=query,
        image_size=image_size or TFDS_IMAGE_SIZE,
        max_train=limit,
        max_queries=num_queries or TFDS_NUM_QUERIES,
        data_dir=data_dir,
        **split,
    )
    return data, {"kind": "tfds", "name": name}


def _lists(lists, image_root, limit, num_queries, files):
    from keras_mlh import datasets

    if limit is not None or num_queries is not None:
        raise ValueError(
            "--limit and --num-queries do not apply to --lists data: the "
            "list files name the training images and the queries."
        )
    data = _loaded(datasets.from_list_files, lists, image_root=image_root, **files)
    source = {
        "kind": "lists",
        "path": os.path.abspath(lists),
        "image_root": data.image_root,
        "list_files": data.list_files,
    }
    return data, source


def _folder(folder, limit, num_queries, files):
    from keras_mlh import datasets

    if limit is not None:
        raise ValueError("--limit applies to mnist5k, --npz and --tfds data.")
    if not os.path.isdir(folder):
        raise ValueError(
            f"Image folder not found: {folder!r}. Give a folder with one "
            "subfolder of images per class."
        )
    queries = NUM_QUERIES if num_queries is None else num_queries
    data = _loaded(datasets.from_directory, folder, num_queries=queries, **files)
    return data, {"kind": "folder", "path": os.path.abspath(folder)}


def _fashion_mnist(path, limit, num_queries, split):
    from keras_mlh import datasets

    if limit is not None or isinstance(num_queries, float):
        raise ValueError(
            "--fashion-mnist trains on the files' 60,000 training images: "
            "--limit does not apply, and --num-queries is a count of test images."
        )
    data = _loaded(datasets.fashion_mnist, path, num_queries=num_queries, **split)
    return data, {"kind": "fashion-mnist", "path": os.path.abspath(path)}


def _arrays(npz, limit, num_queries, split):
    """An `.npz`'s arrays, or the MNIST-5k digits without one."""
    queries = NUM_QUERIES if num_queries is None else num_queries
    if npz is None:
        from keras_mlh import datasets

        data = datasets.mnist5k(num_queries=queries, limit=limit, **split)
        return data, {"kind": "mnist5k"}
    arrays = load_npz(npz, "Training data")
    fix = "save with np.savez(FILE, images=images, labels=labels)."
    names = arrays.get("class_names")
    data = from_arrays(
        arrays[pick(arrays, IMAGE_KEYS[:2], npz, fix)],
        arrays[pick(arrays, LABEL_KEYS, npz, fix)],
        num_queries=queries,
        class_names=None if names is None else [str(n) for n in names],
        limit=limit,
        **split,
    )
    return data, {"kind": "npz", "path": os.path.abspath(npz)}


def _loaded(loader, *args, **kwargs):
    """Calls a file-backed loader; its `ValueError` (a bad list line, a
    missing or foreign image) is cut to its first line."""
    try:
        return loader(*args, **kwargs)
    except ValueError as error:
        raise ValueError(str(error).splitlines()[0]) from None

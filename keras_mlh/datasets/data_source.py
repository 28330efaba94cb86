"""Which training data a run uses: the rules of `keras-mlh train`'s sources."""

import dataclasses
import inspect
import os

from keras_mlh import datasets  # looked up at call time: tests replace loaders
from keras_mlh.datasets.hashing_data import class_ids_of, drop_classes
from keras_mlh.datasets.image_pipeline import SMALL_BACKBONE, ImageRecipe
from keras_mlh.encoding import LABEL_KEYS
from keras_mlh_runtime.code_files import IMAGE_KEYS, load_npz, pick


def _default(function, name):
    return inspect.signature(function).parameters[name].default


# The loaders' own defaults, where a source leaves them in place.
NUM_QUERIES = _default(datasets.from_arrays, "num_queries")
TFDS_NUM_QUERIES = _default(datasets.from_tfds, "max_queries")
TFDS_IMAGE_SIZE = _default(datasets.from_tfds, "image_size")
TFDS_TRAIN_SPLIT = _default(datasets.from_tfds, "train_split")
TFDS_QUERY_SPLIT = _default(datasets.from_tfds, "query_split")
BATCH_SIZE = _default(datasets.from_arrays, "batch_size")


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
    """A run's data and a JSON-safe record of its source from `keras-mlh train`'s
    options (`docs/cli.md`): one of `npz`, `folder`, `lists`, `fashion_mnist`,
    `tfds`, or none (MNIST-5k).

    Example:
    >>> data, source = training_data(limit=500, num_queries=100)
    >>> source, len(data.y_query)
    ({'kind': 'mnist5k', 'limit': 500}, 100)
    """
    given = {"tfds": tfds, "lists": lists, "folder": folder}
    given.update({"fashion-mnist": fashion_mnist, "npz": npz})  # in precedence
    kind = next((kind for kind in given if given[kind]), "mnist5k")
    _check_options(kind, image_size, resize_size, flip, image_root, limit, num_queries)
    split = {"seed": seed, "batch_size": batch_size}
    recipe = ImageRecipe.for_backbone(
        backbone, image_size=image_size, resize_to=resize_size, horizontal_flip=flip
    )
    files = {"color_mode": color_mode, **dataclasses.asdict(recipe), **split}
    queries = NUM_QUERIES if num_queries is None else num_queries
    source = {"kind": kind}
    if kind != "tfds" and kind in given:
        source["path"] = os.path.abspath(given[kind])
    if tfds:
        data = datasets.from_tfds(
            tfds,
            train_split=tfds_train_split,
            query_split=tfds_query_split,
            image_size=image_size or TFDS_IMAGE_SIZE,
            max_train=limit,
            max_queries=num_queries or TFDS_NUM_QUERIES,
            data_dir=tfds_data_dir,
            **split,
        )
        source["name"] = tfds
    elif lists:
        data = datasets.from_list_files(lists, image_root, **files)
        source.update(image_root=data.image_root, list_files=data.list_files)
    elif folder:
        data = datasets.from_directory(folder, num_queries=queries, **files)
    elif fashion_mnist:
        data = datasets.fashion_mnist(fashion_mnist, num_queries, **split)
    elif npz:
        data = _npz(npz, num_queries=queries, limit=limit, **split)
    else:
        data = datasets.mnist5k(num_queries=queries, limit=limit, **split)
    if limit is not None:
        source["limit"] = limit
    if unseen_classes:
        try:
            ids = class_ids_of(unseen_classes, data.num_classes, data.class_names)
        except ValueError as error:
            raise ValueError(f"--unseen-classes: {error}") from None
        data, source["unseen_classes"] = drop_classes(data, ids), ids
    return data, source


def _check_options(kind, image_size, resize, flip, root, limit, num_queries):
    fraction = isinstance(num_queries, float)
    # fmt: off
    refusals = [
        (image_size is not None and kind not in ("folder", "lists", "tfds"),
         "--image-size applies to --folder, --lists and --tfds data; arrays "
         "(mnist5k, --npz) are used at their own size."),
        (root and kind != "lists", "--image-root applies to --lists data."),
        ((resize or flip) and kind not in ("folder", "lists"),
         "--resize-size and --flip apply to image files (--folder, --lists)."),
        (kind == "tfds" and fraction,
         "With --tfds the queries come from the query split: give "
         f"--num-queries as a count (default {TFDS_NUM_QUERIES})."),
        (kind == "lists" and (limit is not None or num_queries is not None),
         "--limit and --num-queries do not apply to --lists data: the "
         "list files name the training images and the queries."),
        (kind == "folder" and limit is not None,
         "--limit applies to mnist5k, --npz and --tfds data."),
        (kind == "fashion-mnist" and (limit is not None or fraction),
         "--fashion-mnist trains on the files' 60,000 training images: "
         "--limit does not apply, and --num-queries is a count of test images."),
    ]
    # fmt: on
    for refused, message in refusals:
        if refused:
            raise ValueError(message)


def _npz(path, **kwargs):
    arrays = load_npz(path, "Training data")
    fix = "save with np.savez(FILE, images=images, labels=labels)."
    images = arrays[pick(arrays, IMAGE_KEYS[:2], path, fix)]
    labels = arrays[pick(arrays, LABEL_KEYS, path, fix)]
    names = arrays.get("class_names")
    names = None if names is None else [str(n) for n in names]
    return datasets.from_arrays(images, labels, class_names=names, **kwargs)

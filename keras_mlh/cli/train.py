"""`keras-mlh train`: train an MLH model and write a run folder.

A run folder holds `model.keras`, `history.json` (per-epoch logs),
`split.npz` (the exact query/database split: `x_query`, `y_query`,
`x_database`, `y_database`, `num_classes`, optional `class_names`; for
file-backed data, folders and list files, paths relative to `image_root`
instead of pixels: `query_paths`, `database_paths`, with `train_paths` when
the training set is not the database) and `run.json` (settings, counts,
timings, and a SHA-256 of each list file).
Training runs in a staging folder beside `--out` with a checkpoint after
every epoch (`keras_mlh.cli.resume`): `--resume RUN` continues an
interrupted run from its last completed epoch. The run folder is filled in
a temporary folder and moved into place only when complete, so a failed or
interrupted run leaves nothing that looks like a finished one.
"""

import argparse
import os
import shlex
import sys
import time

from keras_mlh import files
from keras_mlh.cli import options, resume
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import quiet_tensorflow
from keras_mlh.cli.options import PROG, default_of
from keras_mlh.datasets.fashion_mnist import DEFAULT_PATH as FASHION_MNIST_PATH
from keras_mlh.datasets.hashing_data import from_arrays
from keras_mlh.datasets.image_recipe import (
    NAMED_IMAGE_SIZE,
    SMALL_BACKBONE,
    SMALL_IMAGE_SIZE,
    ImageRecipe,
    named_resize,
)
from keras_mlh.datasets.tfds_data import from_tfds
from keras_mlh.encoding import LABEL_KEYS
from keras_mlh.models.applications import APPLICATIONS
from keras_mlh.models.modes import MODES
from keras_mlh.runs import (
    HISTORY_FILE,
    MODEL_FILE,
    RUN_FILE,
    RUN_FORMAT,
    SPLIT_FILE,
    same_files,
    save_npz,
    split_arrays,
)
from keras_mlh.training import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE
from keras_mlh_runtime.code_files import IMAGE_KEYS, load_npz, pick

# `--backbone`: the small default or a keras.applications model by name.
BACKBONES = (SMALL_BACKBONE, *APPLICATIONS)
# MLH's defaults (its constructor imports Keras, which --help must not;
# tests/test_cli_options.py checks them against `MLH`'s signature).
DEFAULT_BITS = 32
DEFAULT_MODE = "mlh"
# The library's data defaults that the options leave in place.
NUM_QUERIES = default_of(from_arrays, "num_queries")
TFDS_NUM_QUERIES = default_of(from_tfds, "max_queries")
TFDS_IMAGE_SIZE = default_of(from_tfds, "image_size")

DESCRIPTION = (
    "Trains an MLH model with the package's default recipe (Adam, cosine "
    "decay) and writes a run folder: model.keras, history.json, split.npz (the "
    "query/database split evaluate uses) and run.json. Data: the offline "
    "MNIST-5k digits by default, or --npz, --folder, --lists, --tfds. Folders "
    "and list files are streamed from disk."
)
EPILOG = """examples:
  keras-mlh train --out runs/mnist --bits 32
  keras-mlh train --folder photos/ --image-size 96 --out runs/photos
  keras-mlh train --npz data.npz --epochs 30 --out runs/mine
  keras-mlh train --lists lists/cifar10 --image-root images/ --out runs/c
  keras-mlh train --tfds cifar10 --limit 10000 --out runs/cifar"""


def add_arguments(parser):
    """Declares the options of `keras-mlh train` on `parser`.

    Args:
        parser: the `train` command's `argparse.ArgumentParser`.
    """
    options.add_quiet(parser)
    _add_data_source(parser)
    _add_run_folder(parser)
    _add_model_and_recipe(parser)
    _add_split(parser)
    _add_image_files(parser)
    _add_tfds(parser)
    _add_validation(parser)
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="Keras fit verbosity: 1 progress bar (default), 2 one line per "
        "epoch, 0 silent (as -q)",
    )
    parser.set_defaults(handler=run, parser=parser)


def _add_data_source(parser):
    """--npz, --folder, --lists or --tfds (none: the MNIST-5k digits)."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--npz",
        metavar="FILE",
        help="an .npz with `images` (n, h, w[, c]) raw pixels and `labels` (class "
        "ids or multi-hot); `x`/`y` also accepted, `class_names` optional",
    )
    source.add_argument(
        "--folder",
        metavar="DIR",
        help="a folder with one subfolder of images per class",
    )
    source.add_argument(
        "--lists",
        metavar="DIR",
        help="a folder of list files, train.txt, test.txt (the queries) and "
        "database.txt, one 'relative/path.jpg 0 1 0 ...' (multi-hot labels) a "
        "line, as HashNet and DeepHash-pytorch distribute them; images are "
        "streamed from disk",
    )
    source.add_argument(
        "--fashion-mnist",
        nargs="?",
        const=FASHION_MNIST_PATH,
        metavar="DIR",
        help="Fashion-MNIST's four idx files (default folder: "
        f"{FASHION_MNIST_PATH}, from `apt-get install dataset-fashion-mnist`): "
        "trains on its 60,000 training images (also the database); its test "
        "images are the queries (all, or --num-queries of them)",
    )
    source.add_argument(
        "--tfds",
        metavar="NAME",
        help="a tensorflow-datasets name, e.g. cifar10 (downloads on first use)",
    )


def _add_run_folder(parser):
    """Where the run goes: --out, --overwrite, --resume."""
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="run folder to create (default: runs/run-DATE-TIME)",
    )
    options.add_overwrite(
        parser,
        "replace an earlier run folder at --out, and discard an interrupted run of it",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the interrupted run whose --out was RUN from its last "
        "completed epoch, with that run's settings",
    )


def _add_model_and_recipe(parser):
    """The model (code length, mode, backbone) and its training recipe."""
    options.add_number(parser, "--bits", DEFAULT_BITS, "code length", type=options.bits)
    # Left None when not given: `--resume` tells given options from defaults.
    parser.add_argument(
        "--epochs",
        type=options.positive_int,
        default=None,
        help=f"default: {DEFAULT_EPOCHS}",
    )
    parser.add_argument(
        "--mode",
        choices=tuple(MODES),
        default=DEFAULT_MODE,
        help=f"default: {DEFAULT_MODE}",
    )
    parser.add_argument(
        "--backbone",
        choices=BACKBONES,
        default=SMALL_BACKBONE,
        help=f"{SMALL_BACKBONE} (SmallConvBackbone, default) or a "
        "keras.applications model (3-channel images)",
    )
    parser.add_argument(
        "--backbone-weights",
        choices=("none", "imagenet"),
        default="none",
        help="imagenet downloads pretrained weights (needs network); a named "
        "backbone gets raw 0..255 pixels and its own ImageNet preprocessing "
        "(default: none)",
    )
    parser.add_argument(
        "--augment",
        action="store_true",
        help="random translations and rotations during training",
    )
    parser.add_argument(
        "--learning-rate",
        type=options.positive_float,
        default=None,
        help=f"default: {DEFAULT_LEARNING_RATE:g}",
    )
    options.add_batch_size(parser, default_of(from_arrays, "batch_size"), help=None)
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the split and the weights"
    )


def _add_split(parser):
    """How many images become queries, and how many are used at all."""
    parser.add_argument(
        "--num-queries",
        type=options.count_or_fraction,
        default=None,
        help=f"query images held out: a count or a fraction (default: "
        f"{NUM_QUERIES}; with --tfds, a count from the query split, default "
        f"{TFDS_NUM_QUERIES})",
    )
    parser.add_argument(
        "--limit",
        type=options.positive_int,
        default=None,
        metavar="N",
        help="train on N images (quick trials): a seeded random sample of mnist5k "
        "or --npz data, the first N examples of a --tfds split",
    )


def _add_image_files(parser):
    """How --folder and --lists images are read: size, crop, flips."""
    parser.add_argument(
        "--image-size",
        type=options.image_size,
        default=None,
        metavar="SIZE",
        help="size of the images the model gets, for --folder and --lists "
        f"(default: {_side(SMALL_IMAGE_SIZE)}, or {_side(NAMED_IMAGE_SIZE)} with a "
        f"named backbone) and --tfds (default: {_side(TFDS_IMAGE_SIZE)}): SIZE or "
        "HEIGHTxWIDTH",
    )
    parser.add_argument(
        "--resize-size",
        type=options.image_size,
        default=None,
        metavar="SIZE",
        help="for --folder and --lists: resize to SIZE, then crop --image-size "
        "(random in training, central at evaluation and export). Default: "
        f"{_side(named_resize(NAMED_IMAGE_SIZE))} with a named backbone (then "
        f"--image-size defaults to {_side(NAMED_IMAGE_SIZE)}), none with the "
        "small one",
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips of --folder and --lists training images "
        "(default: on with a named backbone, off with the small one)",
    )
    parser.add_argument(
        "--image-root",
        metavar="ROOT",
        help="the folder the paths of --lists resolve against (default: DIR)",
    )
    parser.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale"),
        default="rgb",
        help="how --folder and --lists images are read (default: rgb)",
    )


def _add_tfds(parser):
    """The splits and data folder of --tfds."""
    for split in ("train", "query"):
        parser.add_argument(
            f"--tfds-{split}-split",
            default=default_of(from_tfds, f"{split}_split"),
            metavar="SPLIT",
        )
    parser.add_argument("--tfds-data-dir", default=None, metavar="DIR")


def _add_validation(parser):
    """Validation queries, unseen classes and how often val mAP is logged."""
    parser.add_argument(
        "--val-split",
        type=options.count_or_fraction,
        default=None,
        metavar="F",
        help="hold F training images out (a count or a fraction; seeded, "
        "stratified) as validation queries searched against the rest of the "
        "training set; their val mAP picks the epoch kept. The test queries "
        "never pick anything",
    )
    parser.add_argument(
        "--unseen-classes",
        metavar="IDS",
        help="comma-separated class ids or names left out of training (the "
        "queries and database keep them); evaluate then reports seen/unseen mAP",
    )
    options.add_number(
        parser,
        "--val-every",
        5,
        "validation mAP (into history.json) every N epochs, 0 for never",
        type=options.non_negative_int,
        metavar="N",
    )


def _side(size):
    """`(64, 64)` -> `"64"`, `(64, 48)` -> `"64x48"`, as `--image-size` takes."""
    return str(size[0]) if size[0] == size[1] else f"{size[0]}x{size[1]}"


def run(args):
    """Trains a model on the chosen data and writes the run folder `--out`.

    With `--resume RUN`, continues the interrupted run `RUN` from its last
    completed epoch instead, with its settings (see `keras_mlh.cli.resume`).

    Args:
        args: the parsed `train` options (data source, model, recipe, `out`,
            `overwrite`, `resume`).

    Returns:
        0. The output location is checked before the data is loaded;
        errors are raised for `main` to report.
    """
    if args.resume is not None:
        args, stage = resume.resumed_args(args)
    else:
        if args.out is None:
            args.out = os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
        stage = resume.Stage(os.path.abspath(args.out))
    out = check_run_folder(args)
    stage.check_free()  # before the data is loaded; `locked` checks again
    if args.resume is None and stage.exists():
        done = 0 if args.overwrite else stage.progress()["epoch"]
        if done and not args.overwrite:
            raise CLIError(
                f"An interrupted run of {out!r} ({done} epoch{'s' if done > 1 else ''} "
                f"done) can be resumed: `{PROG} train --resume {shlex.quote(args.out)}`; or pass "
                "--overwrite to discard it and start afresh."
            )
        stage.discard_unused()  # nothing to resume in it, or --overwrite
    if args.resume is None:
        args.command_line = [PROG, *sys.argv[1:]] if args.from_command_line else None
    files.check_writable(out)  # before the data is loaded
    quiet_tensorflow()  # before the data sources, which may import it
    data, source = training_data(args)
    digest = resume.data_digest(data)
    if stage.exists():
        resume.check_same_data(stage, digest)
    else:
        stage.create(resume.settings_of(args), digest)
    with stage.locked():
        try:
            model, logs, seconds, trained = _train(args, data, source, stage)
        except BaseException:
            done = stage.progress()["epoch"]
            if done == 0:
                stage.discard()  # nothing worth resuming
            else:
                print(
                    f"{PROG}: {done} completed epoch{'s are' if done != 1 else ' is'} "
                    f"kept; continue with `{PROG} train --resume {shlex.quote(args.out)}`",
                    file=sys.stderr,
                )
            raise
        with files.atomic_folder(out) as work:
            _write_run_folder(args, source, model, logs, seconds, work, out, **trained)
    stage.discard()
    print(f"Wrote the run folder {out}")
    for name in (MODEL_FILE, HISTORY_FILE, SPLIT_FILE, RUN_FILE):
        print(f"  {os.path.join(out, name)}")
    print(f"Next: {PROG} evaluate {out}")
    return 0


def check_run_folder(args):
    """Checks that `args.out` may become a run folder (an earlier run, with
    `run.json`, may be replaced with --overwrite, but never one holding the
    training data); creates nothing.

    Returns:
        The absolute path of `args.out`.
    """
    return files.check_output(
        args.out,
        inputs=[
            args.npz,
            args.folder,
            args.tfds_data_dir,
            args.lists,
            args.image_root,
            getattr(args, "fashion_mnist", None),
        ],
        overwrite=args.overwrite,
        kind="folder",
        marker=RUN_FILE,
        what="run folder",
        not_inside=[args.folder, args.lists, args.image_root],
    )


def training_data(args):
    """The training data chosen by the arguments, split into queries/database.

    Args:
        args: the parsed `train` arguments.

    Returns:
        `(data, source)`: a `keras_mlh.datasets.HashingData` and a JSON-safe
        description of where it came from, for `run.json`.
    """
    from keras_mlh import datasets

    lists = getattr(args, "lists", None)
    if args.image_size is not None and not (args.folder or args.tfds or lists):
        raise CLIError(
            "--image-size applies to --folder, --lists and --tfds data; arrays "
            "(mnist5k, --npz) are used at their own size."
        )
    if getattr(args, "image_root", None) and not lists:
        raise CLIError("--image-root applies to --lists data.")
    recipe_flags = getattr(args, "resize_size", None) or getattr(args, "flip", None)
    if recipe_flags and not (args.folder or lists):
        raise CLIError(
            "--resize-size and --flip apply to image files (--folder, --lists)."
        )
    num_queries = NUM_QUERIES if args.num_queries is None else args.num_queries
    split = {"seed": args.seed, "batch_size": args.batch_size}
    if args.tfds:
        if isinstance(args.num_queries, float):
            raise CLIError(
                "With --tfds the queries come from the query split: give "
                f"--num-queries as a count (default {TFDS_NUM_QUERIES})."
            )
        data = datasets.from_tfds(
            args.tfds,
            train_split=args.tfds_train_split,
            query_split=args.tfds_query_split,
            image_size=args.image_size or TFDS_IMAGE_SIZE,
            max_train=args.limit,
            max_queries=args.num_queries or TFDS_NUM_QUERIES,
            data_dir=args.tfds_data_dir,
            **split,
        )
        source = {"kind": "tfds", "name": args.tfds}
    elif lists:
        if args.limit is not None or args.num_queries is not None:
            raise CLIError(
                "--limit and --num-queries do not apply to --lists data: the "
                "list files name the training images and the queries."
            )
        data = _loaded(
            datasets.from_list_files,
            lists,
            image_root=args.image_root,
            color_mode=args.color_mode,
            **image_recipe(args).kwargs(),
            **split,
        )
        source = {
            "kind": "lists",
            "path": os.path.abspath(lists),
            "image_root": data.image_root,
            "list_files": data.list_files,
        }
    elif args.folder:
        if args.limit is not None:
            raise CLIError("--limit applies to mnist5k, --npz and --tfds data.")
        if not os.path.isdir(args.folder):
            raise CLIError(
                f"Image folder not found: {args.folder!r}. Give a folder with one "
                "subfolder of images per class."
            )
        data = _loaded(
            datasets.from_directory,
            args.folder,
            color_mode=args.color_mode,
            **image_recipe(args).kwargs(),
            num_queries=num_queries,
            **split,
        )
        source = {"kind": "folder", "path": os.path.abspath(args.folder)}
    elif getattr(args, "fashion_mnist", None):
        if args.limit is not None or isinstance(args.num_queries, float):
            raise CLIError(
                "--fashion-mnist trains on the files' 60,000 training images: "
                "--limit does not apply, and --num-queries is a count of test images."
            )
        data = _loaded(
            datasets.fashion_mnist,
            args.fashion_mnist,
            num_queries=args.num_queries,
            **split,
        )
        source = {"kind": "fashion-mnist", "path": os.path.abspath(args.fashion_mnist)}
    elif args.npz:
        arrays = load_npz(args.npz, "Training data")
        fix = "save with np.savez(FILE, images=images, labels=labels)."
        names = arrays.get("class_names")
        data = datasets.from_arrays(
            arrays[pick(arrays, IMAGE_KEYS[:2], args.npz, fix)],
            arrays[pick(arrays, LABEL_KEYS, args.npz, fix)],
            num_queries=num_queries,
            class_names=None if names is None else [str(n) for n in names],
            limit=args.limit,
            **split,
        )
        source = {"kind": "npz", "path": os.path.abspath(args.npz)}
    else:
        data = datasets.mnist5k(num_queries=num_queries, limit=args.limit, **split)
        source = {"kind": "mnist5k"}
    if args.limit is not None:
        source["limit"] = args.limit
    unseen = getattr(args, "unseen_classes", None)
    if unseen:
        from keras_mlh.datasets.holdout import class_ids_of, drop_classes

        try:
            ids = class_ids_of(unseen.split(","), data.num_classes, data.class_names)
            data = drop_classes(data, ids)
        except ValueError as error:
            raise CLIError(f"--unseen-classes: {error}") from None
        source["unseen_classes"] = ids
    return data, source


def _validation(args, data):
    """The `--val-split` hold-out of the training set, or `None`."""
    if getattr(args, "val_split", None) is None:
        return None
    from keras_mlh.datasets.holdout import hold_out_validation

    try:
        return hold_out_validation(data, args.val_split, seed=args.seed)
    except ValueError as error:
        raise CLIError(f"--val-split: {error}") from None


def image_recipe(args):
    """The `ImageRecipe` of --backbone, --image-size, --resize-size and --flip."""
    return ImageRecipe.for_backbone(
        args.backbone,
        image_size=args.image_size,
        resize_to=getattr(args, "resize_size", None),
        horizontal_flip=getattr(args, "flip", None),
    )


def _loaded(loader, *args, **kwargs):
    """Calls a file-backed loader; its `ValueError` (a bad list line, a
    missing or foreign image) becomes the CLI's one-line error."""
    try:
        return loader(*args, **kwargs)
    except ValueError as error:
        raise CLIError(str(error).splitlines()[0]) from None


def _recipe_info(data):
    """How image files are prepared, for run.json; `None` for arrays."""
    if not hasattr(data, "resize_to"):
        return None
    recipe = ImageRecipe(data.image_size, data.resize_to, data.horizontal_flip)
    return recipe.run_info(data.color_mode)


def _train(args, data, source, stage):
    """Trains (or continues training) the model with a checkpoint per epoch.

    Returns:
        `(model, logs, seconds, trained)`: the trained model, the per-epoch
        logs of all epochs, the training seconds of all sessions, and a dict
        with the `data` trained on (without the `--val-split` images), the
        `validation` split and the epoch `selection` (or `None`s).
    """
    quiet_tensorflow()
    import keras

    from keras_mlh.callbacks import RetrievalMetricsCallback
    from keras_mlh.models import MLH
    from keras_mlh.training import default_training

    keras.utils.set_random_seed(args.seed)
    backbone = None if args.backbone == SMALL_BACKBONE else args.backbone
    weights = None if args.backbone_weights == "none" else args.backbone_weights
    model = MLH(
        num_classes=data.num_classes,
        bits=args.bits,
        mode=args.mode,
        backbone=backbone,
        backbone_weights=weights,
        augmentation="default" if args.augment else None,
    )
    validation = _validation(args, data)
    if validation is not None:
        data = validation.data  # trains without the held-out images
    train = data.train
    recipe = default_training(
        epochs=args.epochs,
        steps_per_epoch=len(train),
        learning_rate=args.learning_rate,
    )
    model.compile(optimizer=recipe.optimizer)
    callbacks = []
    from keras_mlh.datasets import HashingData

    streamed = not isinstance(data, HashingData)
    monitor = None
    if validation is not None:
        # The package's protocol: val mAP on images held out of the training
        # set picks the epoch kept; the test queries never pick anything.
        queries, database = validation.queries, validation.database
        monitor = "val_map"
    else:
        queries = ((data.query if streamed else data.x_query), data.y_query)
        database = ((data.database if streamed else data.x_database), data.y_database)
    if args.val_every or validation is not None:
        callbacks.append(
            RetrievalMetricsCallback(
                queries,
                database,
                every_n_epochs=args.val_every or 1,
                batch_size=max(args.batch_size, options.INFERENCE_BATCH_SIZE),
                verbose=0,
            )
        )
    start = stage.progress()
    # After the callbacks that add to the logs, so the checkpoint has them all.
    # It keeps the best epoch by val mAP across `--resume` sessions too.
    checkpoint = resume.checkpoint_callback(stage, start, monitor=monitor)
    callbacks.append(checkpoint)
    print(
        f"Training MLH (mode={args.mode}, {args.bits} bits, backbone={args.backbone}) "
        f"on {source['kind']}: {len(data.y_train)} training, "
        f"{len(data.y_database)} database images {data.image_shape}"
        f"{' (streamed from disk)' if streamed else ''}, {len(data.y_query)} "
        f"queries, {data.num_classes} classes, "
        f"{recipe.epochs} epoch{'s' if recipe.epochs > 1 else ''}"
    )
    if start["epoch"]:
        print(f"Resuming after epoch {start['epoch']} of {recipe.epochs}")
    try:
        model.fit(
            train,
            epochs=recipe.epochs,
            initial_epoch=start["epoch"],
            verbose=args.verbose,
            callbacks=callbacks,
        )
    except Exception as error:
        from keras_mlh.datasets.image_pipeline import decode_failure

        failure = decode_failure(error) if streamed else None
        if failure is None:
            raise
        raise CLIError(str(failure)) from None
    logs = checkpoint.history
    selection = None
    best = checkpoint.restore_best() if monitor else None
    if best is not None:
        selection = {
            "val_split": args.val_split,
            "num_val_queries": int(len(validation.queries[1])),
            "num_val_database": int(len(validation.database[1])),
            "best_epoch": best["epoch"],
            "best_val_map": best["value"],
            "kept": "the weights of the best epoch by val_map",
        }
        print(
            f"Kept epoch {selection['best_epoch']}: best validation mAP@all "
            f"{selection['best_val_map']:.4f} on {selection['num_val_queries']} "
            "images held out of training"
        )
    elif "val_map" in logs:
        print(f"Validation mAP@all at the end: {logs['val_map'][-1]:.4f}")
    trained = {"data": data, "validation": validation, "selection": selection}
    return model, logs, checkpoint.seconds(), trained


def _write_run_folder(
    args, source, model, logs, seconds, work, out, data, validation, selection
):
    """Writes the run folder's files into `work` (`data` as trained on)."""
    from keras_mlh.datasets import FileHashingData
    from keras_mlh.version import __version__

    epochs = len(next(iter(logs.values()))) if logs else args.epochs
    model.save(os.path.join(work, MODEL_FILE))
    files.write_json(logs, os.path.join(work, HISTORY_FILE))
    save_npz(
        os.path.join(work, SPLIT_FILE),
        **split_arrays(data, validation, source.get("unseen_classes")),
    )
    run_info = {
        "format": RUN_FORMAT,
        "keras_mlh_version": __version__,
        "command": args.command_line,
        "source": source,
        "bits": args.bits,
        "mode": args.mode,
        "backbone": args.backbone,
        "backbone_weights": args.backbone_weights,
        "augment": args.augment,
        "epochs": epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "num_classes": int(data.num_classes),
        "class_names": data.class_names,
        "image_shape": [int(d) for d in data.image_shape],
        "multi_label": bool(data.multi_label),
        "num_train": int(len(data.y_train)),
        "num_queries": int(len(data.y_query)),
        "num_database": int(len(data.y_database)),
        "database_is_training_set": not isinstance(data, FileHashingData)
        or same_files(data.train_paths, data.database_paths),
        "validation": selection,
        "unseen_classes": source.get("unseen_classes"),
        "image_recipe": _recipe_info(data),
        "train_seconds": round(seconds, 3),
        "final_logs": {key: values[-1] for key, values in logs.items()},
        "files": {
            "model": MODEL_FILE,
            "history": HISTORY_FILE,
            "split": SPLIT_FILE,
        },
        "folder": out,
    }
    files.write_json(run_info, os.path.join(work, RUN_FILE))

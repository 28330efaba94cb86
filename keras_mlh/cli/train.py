"""`keras-mlh train`: train an MLH model and write a run folder.

The options become one `keras_mlh.runs.train` call on the data of
`keras_mlh.datasets.data_source.training_data`; the run folder's files are
described in `keras_mlh.runs`. `--resume` continues an interrupted run of
`--out` (the same command, `--resume` added) after its last completed epoch.
"""

import argparse
import os
import shlex
import sys
import time

from keras_mlh import runs
from keras_mlh.cli import options
from keras_mlh.cli.options import PROG, default_of
from keras_mlh.datasets.data_source import (
    NUM_QUERIES,
    TFDS_IMAGE_SIZE,
    TFDS_NUM_QUERIES,
    training_data,
)
from keras_mlh.datasets.fashion_mnist import DEFAULT_PATH as FASHION_MNIST_PATH
from keras_mlh.datasets.hashing_data import from_arrays
from keras_mlh.datasets.image_pipeline import (
    NAMED_IMAGE_SIZE,
    SMALL_BACKBONE,
    SMALL_IMAGE_SIZE,
    named_resize,
)
from keras_mlh.datasets.tfds_data import from_tfds
from keras_mlh.models.applications import APPLICATIONS
from keras_mlh.models.modes import MODES
from keras_mlh.runs import HISTORY_FILE, MODEL_FILE, RUN_FILE, SPLIT_FILE
from keras_mlh.training import DEFAULT_EPOCHS, DEFAULT_LEARNING_RATE

# `--backbone`: the small default or a keras.applications model by name.
BACKBONES = (SMALL_BACKBONE, *APPLICATIONS)
# MLH's defaults (its constructor imports Keras, which --help must not;
# tests/test_cli_options.py checks them against `MLH`'s signature).
DEFAULT_BITS = 32
DEFAULT_MODE = "mlh"

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
    add, side = parser.add_argument, _side
    options.add_quiet(parser)
    _add_data_source(parser)
    # fmt: off
    add("--out", metavar="DIR", help="run folder to create (default: "
        "runs/run-DATE-TIME)")
    options.add_overwrite(parser, "replace an earlier run folder at --out, and "
        "discard an interrupted run of it")
    add("--resume", action="store_true", help="continue the interrupted run of "
        "--out after its last completed epoch: the run's command, with --resume")
    options.add_number(parser, "--bits", DEFAULT_BITS, "code length",
        type=options.bits)
    add("--epochs", type=options.positive_int, help=f"default: {DEFAULT_EPOCHS}")
    add("--mode", choices=tuple(MODES), default=DEFAULT_MODE,
        help=f"default: {DEFAULT_MODE}")
    add("--backbone", choices=BACKBONES, default=SMALL_BACKBONE,
        help=f"{SMALL_BACKBONE} (SmallConvBackbone, default) or a "
        "keras.applications model (3-channel images)")
    add("--backbone-weights", choices=("none", "imagenet"), default="none",
        help="imagenet downloads pretrained weights (needs network); a named "
        "backbone gets raw 0..255 pixels and its own ImageNet preprocessing "
        "(default: none)")
    add("--learning-rate", type=options.positive_float,
        help=f"default: {DEFAULT_LEARNING_RATE:g}")
    options.add_batch_size(parser, default_of(from_arrays, "batch_size"), help=None)
    add("--seed", type=int, default=0, help="seed of the split and the weights")
    add("--num-queries", type=options.count_or_fraction, help="query images held "
        f"out: a count or a fraction (default: {NUM_QUERIES}; with --tfds, a count "
        f"from the query split, default {TFDS_NUM_QUERIES})")
    add("--limit", type=options.positive_int, metavar="N", help="train on N images "
        "(quick trials): a seeded random sample of mnist5k or --npz data, the "
        "first N examples of a --tfds split")
    add("--image-size", type=options.image_size, metavar="SIZE", help="size of the "
        f"images the model gets, for --folder and --lists (default: "
        f"{side(SMALL_IMAGE_SIZE)}, or {side(NAMED_IMAGE_SIZE)} with a named "
        f"backbone) and --tfds (default: {side(TFDS_IMAGE_SIZE)}): SIZE or "
        "HEIGHTxWIDTH")
    add("--resize-size", type=options.image_size, metavar="SIZE", help="for "
        "--folder and --lists: resize to SIZE, then crop --image-size (random in "
        "training, central at evaluation and export). Default: "
        f"{side(named_resize(NAMED_IMAGE_SIZE))} with a named backbone (then "
        f"--image-size defaults to {side(NAMED_IMAGE_SIZE)}), none with the small "
        "one")
    add("--flip", action=argparse.BooleanOptionalAction, help="random horizontal "
        "flips of --folder and --lists training images (default: on with a named "
        "backbone, off with the small one)")
    add("--image-root", metavar="ROOT",
        help="the folder the paths of --lists resolve against (default: DIR)")
    add("--color-mode", choices=("rgb", "grayscale"), default="rgb",
        help="how --folder and --lists images are read (default: rgb)")
    for split in ("train", "query"):
        add(f"--tfds-{split}-split", metavar="SPLIT",
            default=default_of(from_tfds, f"{split}_split"))
    add("--tfds-data-dir", metavar="DIR")
    add("--val-split", type=options.count_or_fraction, metavar="F", help="hold F "
        "training images out (a count or a fraction; seeded, stratified) as "
        "validation queries searched against the rest of the training set; "
        "their val mAP picks the epoch kept. The test queries never pick anything")
    add("--unseen-classes", metavar="IDS", help="comma-separated class ids or names "
        "left out of training (the queries and database keep them); evaluate "
        "then reports seen/unseen mAP")
    options.add_number(parser, "--val-every", 5, "validation mAP (into "
        "history.json) every N epochs, 0 for never", type=options.non_negative_int,
        metavar="N")
    add("--verbose", type=int, choices=(0, 1, 2), default=1, help="Keras fit "
        "verbosity: 1 progress bar (default), 2 one line per epoch, 0 silent (as -q)")
    # fmt: on
    parser.set_defaults(handler=run, parser=parser)


def _add_data_source(parser):
    """--npz, --folder, --lists, --fashion-mnist or --tfds (none: MNIST-5k)."""
    source = parser.add_mutually_exclusive_group()
    # fmt: off
    source.add_argument("--npz", metavar="FILE", help="an .npz with `images` (n, h, "
        "w[, c]) raw pixels and `labels` (class ids or multi-hot); `x`/`y` also "
        "accepted, `class_names` optional")
    source.add_argument("--folder", metavar="DIR",
        help="a folder with one subfolder of images per class")
    source.add_argument("--lists", metavar="DIR", help="a folder of list files, "
        "train.txt, test.txt (the queries) and database.txt, one 'relative/path.jpg "
        "0 1 0 ...' (multi-hot labels) a line, as HashNet and DeepHash-pytorch "
        "distribute them; images are streamed from disk")
    source.add_argument("--fashion-mnist", nargs="?", const=FASHION_MNIST_PATH,
        metavar="DIR", help="Fashion-MNIST's four idx files (default folder: "
        f"{FASHION_MNIST_PATH}, from `apt-get install dataset-fashion-mnist`): "
        "trains on its 60,000 training images (also the database); its test "
        "images are the queries (all, or --num-queries of them)")
    source.add_argument("--tfds", metavar="NAME",
        help="a tensorflow-datasets name, e.g. cifar10 (downloads on first use)")
    # fmt: on


def _side(size):
    """`(64, 64)` -> `"64"`, `(64, 48)` -> `"64x48"`, as `--image-size` takes."""
    return str(size[0]) if size[0] == size[1] else f"{size[0]}x{size[1]}"


def run(args):
    """Trains a model on the chosen data and writes the run folder `--out`.

    Args:
        args: the parsed `train` options (data source, model, recipe, `out`,
            `overwrite`, `resume`).

    Returns:
        0. The output location is checked before the data is loaded;
        errors are raised for `main` to report.
    """
    if args.out is None:
        if args.resume:
            raise ValueError("--resume needs the --out of the interrupted run.")
        args.out = os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
    out, _ = runs.check_run_folder(
        args.out,
        inputs=[args.npz, args.folder, args.tfds_data_dir, args.lists,
                args.image_root, args.fashion_mnist],
        not_inside=[args.folder, args.lists, args.image_root],
        overwrite=args.overwrite,
        resume=args.resume,
    )  # fmt: skip
    data, source = training_data(
        **{name: getattr(args, name) for name in DATA_OPTIONS},
        unseen_classes=args.unseen_classes and args.unseen_classes.split(","),
    )
    command = [PROG, *sys.argv[1:]] if args.from_command_line else None
    try:
        runs.train(
            out,
            data,
            source=source,
            **{name: getattr(args, name) for name in RUN_OPTIONS},
            backbone_weights=None if args.backbone_weights == "none" else "imagenet",
            resume=args.resume,
            overwrite=args.overwrite,
            command=command,
        )
    except BaseException:
        done = runs.epochs_done(out)
        if done:
            again = command or [PROG, "train", "--out", out]
            again += [] if "--resume" in again else ["--resume"]
            print(
                f"{PROG}: {done} completed epoch{'s are' if done != 1 else ' is'} "
                f"kept; continue with `{shlex.join(again)}`",
                file=sys.stderr,
            )
        raise
    print(f"Wrote the run folder {out}")
    for name in (MODEL_FILE, HISTORY_FILE, SPLIT_FILE, RUN_FILE):
        print(f"  {os.path.join(out, name)}")
    print(f"Next: {PROG} evaluate {out}")
    return 0


# The options passed as they are to `training_data` and `runs.train`.
DATA_OPTIONS = (
    "npz", "folder", "lists", "fashion_mnist", "tfds", "backbone", "image_size",
    "resize_size", "flip", "image_root", "color_mode", "num_queries", "limit",
    "seed", "batch_size", "tfds_train_split", "tfds_query_split", "tfds_data_dir",
)  # fmt: skip
RUN_OPTIONS = (
    "bits", "mode", "backbone", "epochs", "learning_rate", "seed",
    "val_split", "val_every", "verbose",
)  # fmt: skip

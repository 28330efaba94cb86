"""`keras-mlh train`: train an MLH model and write a run folder.

A run folder holds `model.keras`, `history.json` (per-epoch logs),
`split.npz` (the exact query/database split: `x_query`, `y_query`,
`x_database`, `y_database`, `num_classes`, optional `class_names`; the
database is the training set) and `run.json` (settings, counts, timings).
Training runs in a staging folder beside `--out` with a checkpoint after
every epoch (`keras_mlh.cli.resume`): `--resume RUN` continues an
interrupted run from its last completed epoch. The run folder is filled in
a temporary folder and moved into place only when complete, so a failed or
interrupted run leaves nothing that looks like a finished one.
"""

import os
import shlex
import sys
import time

import numpy as np

from keras_mlh import files
from keras_mlh.cli import resume
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import (
    IMAGE_KEYS,
    LABEL_KEYS,
    load_npz,
    pick,
    quiet_tensorflow,
    save_npz,
)
from keras_mlh.cli.parser import PROG

RUN_FORMAT = "keras-mlh-run"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.npz"
RUN_FILE = "run.json"


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
        done = stage.progress()["epoch"]
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
            model, logs, seconds = _train(args, data, source, stage)
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
            _write_run_folder(args, data, source, model, logs, seconds, work, out)
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
        inputs=[args.npz, args.folder, args.tfds_data_dir],
        overwrite=args.overwrite,
        kind="folder",
        marker=RUN_FILE,
        what="run folder",
        not_inside=[args.folder],
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

    if args.image_size is not None and not (args.folder or args.tfds):
        raise CLIError(
            "--image-size applies to --folder and --tfds data; arrays (mnist5k, "
            "--npz) are used at their own size."
        )
    num_queries = 0.2 if args.num_queries is None else args.num_queries
    split = {"seed": args.seed, "batch_size": args.batch_size}
    if args.tfds:
        if isinstance(args.num_queries, float):
            raise CLIError(
                "With --tfds the queries come from the query split: give "
                "--num-queries as a count (default 1000)."
            )
        data = datasets.from_tfds(
            args.tfds,
            train_split=args.tfds_train_split,
            query_split=args.tfds_query_split,
            image_size=args.image_size or (32, 32),
            max_train=args.limit,
            max_queries=args.num_queries or 1000,
            data_dir=args.tfds_data_dir,
            **split,
        )
        source = {"kind": "tfds", "name": args.tfds}
    elif args.folder:
        if args.limit is not None:
            raise CLIError("--limit applies to mnist5k, --npz and --tfds data.")
        if not os.path.isdir(args.folder):
            raise CLIError(
                f"Image folder not found: {args.folder!r}. Give a folder with one "
                "subfolder of images per class."
            )
        data = datasets.from_directory(
            args.folder,
            image_size=args.image_size or (64, 64),
            color_mode=args.color_mode,
            num_queries=num_queries,
            **split,
        )
        source = {"kind": "folder", "path": os.path.abspath(args.folder)}
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
    return data, source


def _train(args, data, source, stage):
    """Trains (or continues training) the model with a checkpoint per epoch.

    Returns:
        `(model, logs, seconds)`: the trained model, the per-epoch logs of all
        epochs and the training seconds of all sessions.
    """
    quiet_tensorflow()
    import keras

    from keras_mlh.callbacks import RetrievalMetricsCallback
    from keras_mlh.models import MLH
    from keras_mlh.training import default_training

    keras.utils.set_random_seed(args.seed)
    backbone = None if args.backbone == "small" else args.backbone
    weights = None if args.backbone_weights == "none" else args.backbone_weights
    model = MLH(
        num_classes=data.num_classes,
        bits=args.bits,
        mode=args.mode,
        backbone=backbone,
        backbone_weights=weights,
        augmentation="default" if args.augment else None,
    )
    train = data.train
    recipe = default_training(
        epochs=args.epochs,
        steps_per_epoch=len(train),
        learning_rate=args.learning_rate,
    )
    model.compile(optimizer=recipe.optimizer)
    callbacks = []
    if args.val_every:
        callbacks.append(
            RetrievalMetricsCallback(
                (data.x_query, data.y_query),
                (data.x_database, data.y_database),
                every_n_epochs=args.val_every,
                batch_size=max(args.batch_size, 256),
                verbose=0,
            )
        )
    start = stage.progress()
    # After the callbacks that add to the logs, so the checkpoint has them all.
    checkpoint = resume.checkpoint_callback(stage, start)
    callbacks.append(checkpoint)
    print(
        f"Training MLH (mode={args.mode}, {args.bits} bits, backbone={args.backbone}) "
        f"on {source['kind']}: {len(data.x_train)} training/database images "
        f"{data.image_shape}, {len(data.x_query)} queries, {data.num_classes} classes, "
        f"{recipe.epochs} epoch{'s' if recipe.epochs > 1 else ''}"
    )
    if start["epoch"]:
        print(f"Resuming after epoch {start['epoch']} of {recipe.epochs}")
    model.fit(
        train,
        epochs=recipe.epochs,
        initial_epoch=start["epoch"],
        verbose=args.verbose,
        callbacks=callbacks,
    )
    logs = checkpoint.history
    if "val_map" in logs:
        print(f"Validation mAP@all at the end: {logs['val_map'][-1]:.4f}")
    return model, logs, checkpoint.seconds()


def _write_run_folder(args, data, source, model, logs, seconds, work, out):
    """Writes the run folder's files into `work`."""
    from keras_mlh.version import __version__

    epochs = len(next(iter(logs.values()))) if logs else args.epochs
    model.save(os.path.join(work, MODEL_FILE))
    files.write_json(logs, os.path.join(work, HISTORY_FILE))
    split = {
        "x_query": data.x_query,
        "y_query": data.y_query,
        "x_database": data.x_database,
        "y_database": data.y_database,
        "num_classes": np.int64(data.num_classes),
    }
    if data.class_names is not None:
        split["class_names"] = np.array([str(n) for n in data.class_names])
    save_npz(os.path.join(work, SPLIT_FILE), **split)
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
        "num_train": int(len(data.x_train)),
        "num_queries": int(len(data.x_query)),
        "num_database": int(len(data.x_database)),
        "database_is_training_set": True,
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

"""Run folders (`model.keras`, `history.json`, `split.npz`, `run.json`): `train`
writes one (`keras-mlh train`), the rest read it. A run trains in a staging
folder beside it, backed up after every epoch by `RunBackup`, so
`train(..., resume=True)` continues it after a kill."""

import json
import os
import shutil

import numpy as np

from keras_mlh import files
from keras_mlh.datasets import FileHashingData, HashingData
from keras_mlh.datasets.hashing_data import hold_out_validation
from keras_mlh.datasets.image_pipeline import (
    SMALL_BACKBONE,
    ImageRecipe,
    decode_failure,
)
from keras_mlh.encoding import INFERENCE_BATCH_SIZE
from keras_mlh.training import default_training
from keras_mlh.version import __version__

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.npz"
RUN_FILE = "run.json"
# In the staging folder: `RunBackup`'s record (each epoch's logs, the seconds,
# what a resumed run must share) and its `BackupAndRestore` backup.
LOG_FILE = "epochs.json"
BACKUP_FOLDER = "backup"


def train(folder, data, *, source=None, bits=32, mode="mlh", backbone=SMALL_BACKBONE,
          backbone_weights=None, epochs=None, learning_rate=None,
          seed=0, val_split=None, val_every=5, verbose=1, resume=False,
          overwrite=False, command=None):  # fmt: skip
    """Trains an MLH model with the default recipe and writes a run folder.

    Args:
        data: a `HashingData`, `FileHashingData` or `TfdsHashingData`.
        source: JSON-safe description of the data for `run.json`.
        bits, mode, backbone, backbone_weights: the model (as `MLH`'s).
        epochs, learning_rate: the recipe's (`None`: its defaults).
        seed: seed of the weights and of the validation hold-out.
        val_split: images held out (count or fraction) to pick the epoch kept.
        val_every: validation mAP (into the history) every N epochs; 0 never.
        resume: continue the interrupted run of `folder` (same settings, data).
        overwrite: replace an earlier run, and discard an interrupted one.
        command: the command line, recorded in `run.json`.

    Returns:
        The `run.json` record (a dict).

    Example:
    >>> from keras_mlh.datasets.data_source import training_data
    >>> data, source = training_data(limit=300, num_queries=60)
    >>> info = train("runs/tiny", data, source=source, bits=16, epochs=1,
    ...              verbose=0)  # doctest: +ELLIPSIS
    Training MLH (mode=mlh, 16 bits, backbone=small) on mnist5k: ...
    >>> info["epochs"], sorted(os.listdir("runs/tiny"))
    (1, ['history.json', 'model.keras', 'run.json', 'split.npz'])
    """
    settings = dict(bits=bits, mode=mode, backbone=backbone,
                    backbone_weights=backbone_weights, epochs=epochs, seed=seed,
                    learning_rate=learning_rate, val_split=val_split,
                    val_every=val_every)  # fmt: skip
    source = source or {}
    inputs = [source.get("path"), source.get("image_root")]
    out, log = check_run_folder(folder, inputs, (), overwrite, resume)
    stage = stage_of(out)
    if not resume:  # nothing to resume there (checked), or `overwrite`
        shutil.rmtree(stage, ignore_errors=True)
    trained = _fit(stage, data, source, settings, verbose, log, command)
    with files.atomic_folder(out) as work:
        run_info = _write_run_folder(work, out, settings, source, **trained)
    shutil.rmtree(stage, ignore_errors=True)
    return run_info


def check_run_folder(folder, inputs=(), not_inside=(), overwrite=False, resume=False):
    """`(absolute path, epoch log to resume or None)` of `folder`, checked to become
    a run folder writing over no `inputs`, into no `not_inside`; creates nothing."""
    if resume and overwrite:
        raise ValueError(
            "--resume continues an interrupted run and --overwrite starts afresh; "
            "give one of them."
        )
    out = os.path.abspath(folder)
    done, log = (0, None) if overwrite else _interrupted(out)
    if resume and not done:
        if os.path.isfile(os.path.join(out, RUN_FILE)):
            raise ValueError(f"{out!r} is a finished run folder; nothing to resume.")
        raise ValueError(
            f"No interrupted run of {out!r} to resume: a run is kept for "
            "--resume once it has completed an epoch."
        )
    if done and not resume:
        raise ValueError(
            f"An interrupted run of {out!r} ({done} epoch{'s' if done > 1 else ''} "
            "done) can be resumed: rerun the command with --resume; or pass "
            "--overwrite to discard it and start afresh."
        )
    out = files.check_output(
        out,
        inputs=inputs,
        overwrite=overwrite or resume,  # resumed: a run that had --overwrite
        kind="folder",
        marker=RUN_FILE,
        what="run folder",
        not_inside=not_inside,
    )
    return out, log if resume else None


def stage_of(out):
    """The staging folder of the run folder `out` (absolute)."""
    return os.path.join(
        os.path.dirname(out), f"{files.TEMP_PREFIX}train-{os.path.basename(out)}"
    )


def epochs_done(folder):
    """Epochs an interrupted run of `folder` has completed (0: none kept)."""
    return _interrupted(os.path.abspath(folder))[0]


def _interrupted(out):
    """`(epochs_done, read_log)` of the interrupted run of `out`, or `(0, None)`."""
    stage = stage_of(out)
    # `BackupAndRestore` writes it once the weights are saved; `RunBackup` logs
    # an epoch just before its backup, so a kill between them logged one more.
    metadata = os.path.join(stage, BACKUP_FOLDER, "training_metadata.json")
    if not os.path.isfile(metadata):
        return 0, None
    log = read_log(stage)
    logged = max(map(len, log["history"].values()), default=0)
    try:
        with open(metadata) as f:
            return min(logged, int(json.load(f)["epoch"])), log
    except (ValueError, KeyError, TypeError):
        return logged, log  # mid-write: Keras restores from its `.bkp` copy


def read_log(stage):
    """`RunBackup`'s record in `stage` (`history`, `seconds`, ...); damaged: an error."""
    path = os.path.join(stage, LOG_FILE)
    if not os.path.exists(path):
        return {"history": {}, "seconds": 0.0}
    try:
        with open(path) as f:
            record = json.load(f)
        return {**record, "history": dict(record["history"]),
                "seconds": float(record["seconds"])}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"The epoch log {path!r} is damaged, so the run cannot be resumed; "
            "restore it, or start afresh with --overwrite."
        ) from None


def _fit(stage, data, source, settings, verbose, log, command):
    """Builds, compiles and fits the model of a run in its staging folder."""
    import keras

    from keras_mlh.callbacks import RetrievalMetricsCallback
    from keras_mlh.callbacks.run_backup import RunBackup
    from keras_mlh.models import MLH

    # The seed, the model, then the recipe: a fixed seed trains to the same weights.
    keras.utils.set_random_seed(settings["seed"])
    backbone = settings["backbone"]
    model = MLH(
        num_classes=data.num_classes,
        bits=settings["bits"],
        mode=settings["mode"],
        backbone=None if backbone == SMALL_BACKBONE else backbone,
        backbone_weights=settings["backbone_weights"],
    )
    validation = None
    if settings["val_split"] is not None:
        try:
            validation = hold_out_validation(
                data, settings["val_split"], seed=settings["seed"]
            )
        except ValueError as error:
            raise ValueError(f"--val-split: {error}") from None
        data = validation.data  # trains without the held-out images
    recipe = default_training(
        epochs=settings["epochs"],
        steps_per_epoch=len(data.train),
        learning_rate=settings["learning_rate"],
    )
    model.compile(optimizer=recipe.optimizer)
    record = _stage_record(stage, settings, recipe.epochs, data, source,
                           log, command)  # fmt: skip
    streamed = not isinstance(data, HashingData)
    if validation is not None:
        # The package's protocol: val mAP on images held out of the training
        # set picks the epoch kept; the test queries never pick anything.
        queries, database = validation.queries, validation.database
    else:
        queries = (data.query if streamed else data.x_query, data.y_query)
        database = (data.database if streamed else data.x_database, data.y_database)
    metrics = [
        RetrievalMetricsCallback(
            queries, database, every_n_epochs=settings["val_every"] or 1,
            batch_size=max(data.batch_size, INFERENCE_BATCH_SIZE), verbose=0,
        )
    ] if settings["val_every"] or validation is not None else []  # fmt: skip
    backup = RunBackup(stage, None if validation is None else "val_map", record)
    print(
        f"Training MLH (mode={settings['mode']}, {settings['bits']} bits, "
        f"backbone={backbone}) on {source.get('kind')}: {len(data.y_train)} "
        f"training, {len(data.y_database)} database images {data.image_shape}"
        f"{' (streamed from disk)' if streamed else ''}, {len(data.y_query)} "
        f"queries, {data.num_classes} classes, "
        f"{recipe.epochs} epoch{'s' if recipe.epochs > 1 else ''}"
    )
    try:
        model.fit(
            data.train, epochs=recipe.epochs, verbose=verbose,
            callbacks=[*metrics, backup],
        )  # fmt: skip
    except BaseException as error:
        if not (log or backup.backed_up):  # no epoch to resume from
            shutil.rmtree(stage, ignore_errors=True)
        failure = isinstance(error, Exception) and decode_failure(error)
        if streamed and failure:  # an image file that cannot be decoded
            raise ValueError(str(failure)) from None
        raise
    return dict(model=model, logs=backup.history, seconds=backup.seconds(),
                command=record["command"], data=data, validation=validation,
                selection=_selection(backup, validation,
                                     settings["val_split"]))  # fmt: skip


def _stage_record(stage, settings, epochs, data, source, log, command):
    """`RunBackup`'s record: fresh, or the `log` resumed (same settings, data)."""
    recorded = {**settings, "epochs": epochs, "source": source,
                "batch_size": data.batch_size, "num_classes": int(data.num_classes),
                "image_shape": [int(d) for d in data.image_shape], "counts": [
                    len(data.y_train), len(data.y_query), len(data.y_database)]}  # fmt: skip
    recorded = json.loads(json.dumps(recorded))  # as stored: lists, not tuples
    if log is None:
        return {"history": {}, "seconds": 0.0, "settings": recorded, "command": command}
    old = log.get("settings") or {}
    keys = {**old, **recorded}  # a setting only one of them has differs too
    key = next((k for k in keys if old.get(k) != recorded.get(k)), None)
    if key is not None:
        raise ValueError(
            f"The interrupted run in {stage!r} was started with other settings or "
            f"data ({key}: {old.get(key)!r} then, {recorded.get(key)!r} now); resume "
            "with the same ones, or start afresh with --overwrite."
        )
    return {**log, "settings": recorded, "command": log.get("command")}


def _selection(backup, validation, val_split):
    """Loads the best epoch by val mAP (with validation); its record."""
    best = backup.restore_best() if validation is not None else None
    if best is None:
        if "val_map" in backup.history:
            print(f"Validation mAP@all at the end: {backup.history['val_map'][-1]:.4f}")
        return None
    queries = int(len(validation.queries[1]))
    print(
        f"Kept epoch {best['epoch']}: best validation mAP@all {best['value']:.4f} "
        f"on {queries} images held out of training"
    )
    return {
        "val_split": val_split,
        "num_val_queries": queries,
        "num_val_database": int(len(validation.database[1])),
        "best_epoch": best["epoch"],
        "best_val_map": best["value"],
        "kept": "the weights of the best epoch by val_map",
    }


def _write_run_folder(
    work, out, settings, source, model, logs, seconds, command, data, validation,
    selection,
):  # fmt: skip
    """Writes the run folder's files into `work` (`data` as trained on)."""
    model.save(os.path.join(work, MODEL_FILE))
    files.write_json(logs, os.path.join(work, HISTORY_FILE))
    split = split_arrays(data, validation, source.get("unseen_classes"))
    with open(os.path.join(work, SPLIT_FILE), "wb") as f:  # exactly this name
        np.savez_compressed(f, **split)
    image_recipe = None
    if hasattr(data, "resize_to"):
        recipe = ImageRecipe(data.image_size, data.resize_to, data.horizontal_flip)
        image_recipe = recipe.run_info(data.color_mode)
    run_info = {
        "format": "keras-mlh-run", "keras_mlh_version": __version__,
        "command": command, "source": source,
        **{key: settings[key] for key in ("bits", "mode", "backbone")},
        "backbone_weights": settings["backbone_weights"] or "none",
        "epochs": len(next(iter(logs.values()))) if logs else settings["epochs"],
        "batch_size": data.batch_size, "learning_rate": settings["learning_rate"],
        "seed": settings["seed"], "num_classes": int(data.num_classes),
        "class_names": data.class_names,
        "image_shape": [int(d) for d in data.image_shape],
        "multi_label": bool(data.multi_label), "num_train": int(len(data.y_train)),
        "num_queries": int(len(data.y_query)),
        "num_database": int(len(data.y_database)),
        "database_is_training_set": "train_paths" not in split,
        "validation": selection, "unseen_classes": source.get("unseen_classes"),
        "image_recipe": image_recipe, "train_seconds": round(seconds, 3),
        "final_logs": {key: values[-1] for key, values in logs.items()},
        "files": {"model": MODEL_FILE, "history": HISTORY_FILE, "split": SPLIT_FILE},
        "folder": out,
    }  # fmt: skip
    files.write_json(run_info, os.path.join(work, RUN_FILE))
    return run_info


def split_arrays(data, validation=None, unseen_classes=None):
    """The arrays of a run folder's `split.npz` (pixels or image paths)."""
    split = {"num_classes": np.int64(data.num_classes)}
    file_backed = isinstance(data, FileHashingData)

    def relative(paths):
        return np.array([os.path.relpath(p, data.image_root) for p in paths])

    if file_backed:
        roles = ["query", "database"]
        if not np.array_equal(data.train_paths, data.database_paths):
            roles.append("train")
        split["image_root"] = np.array(data.image_root)
        for role in roles:
            split[f"{role}_paths"] = relative(getattr(data, f"{role}_paths"))
            split[f"y_{role}"] = getattr(data, f"y_{role}")
        split["image_size"] = np.array(data.image_size, dtype=np.int64)
        split["color_mode"] = np.array(data.color_mode)
        if data.resize_to is not None:
            split["resize_to"] = np.array(data.resize_to, dtype=np.int64)
    else:
        for role in ("query", "database"):
            split[f"x_{role}"] = getattr(data, f"x_{role}")
            split[f"y_{role}"] = getattr(data, f"y_{role}")
    if data.class_names is not None:
        split["class_names"] = np.array([str(n) for n in data.class_names])
    if validation is not None:
        split["val_indices"] = validation.indices
        if file_backed:
            split["val_paths"] = relative(validation.paths)
    if unseen_classes:
        split["unseen_classes"] = np.array(unseen_classes, dtype=np.int64)
    return split

"""The training of a run (`keras_mlh.runs.train`), resumable after a kill.

The model, its seed and the recipe are built in one fixed order (a fixed seed
trains to the same weights).
"""

import json
import os
import shutil

from keras_mlh import files
from keras_mlh.datasets.hashing_data import HashingData, hold_out_validation
from keras_mlh.datasets.image_pipeline import decode_failure
from keras_mlh.encoding import INFERENCE_BATCH_SIZE
from keras_mlh.training import default_training

# In the staging folder: what a resumed run must share, `RunBackup`'s
# per-epoch logs and its `BackupAndRestore` backup.
SETTINGS_FILE = "settings.json"
LOG_FILE = "epochs.json"
BACKUP_FOLDER = "backup"


def read_log(folder):
    """`{"history", "seconds"}` logged in `folder`; damaged: an error (not lost)."""
    path = os.path.join(folder, LOG_FILE)
    if not os.path.exists(path):
        return {"history": {}, "seconds": 0.0}
    try:
        with open(path) as f:
            record = json.load(f)
        return {"history": dict(record["history"]), "seconds": float(record["seconds"])}
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(
            f"The epoch log {path!r} is damaged, so the run cannot be resumed; "
            "restore it, or start afresh with --overwrite."
        ) from None


def fit_run(stage, data, source, settings, verbose=1, resume=False, command=None):
    """Builds, compiles and fits the model of a run in its staging folder
    (arguments as `keras_mlh.runs.train`'s); a dict of what it writes."""
    import keras

    from keras_mlh.models import MLH

    keras.utils.set_random_seed(settings["seed"])
    backbone = settings["backbone"]
    model = MLH(
        num_classes=data.num_classes,
        bits=settings["bits"],
        mode=settings["mode"],
        backbone=None if backbone == "small" else backbone,
        backbone_weights=settings["backbone_weights"],
        augmentation="default" if settings["augment"] else None,
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
    command = _open_stage(stage, settings, recipe, data, source, resume, command)
    streamed = not isinstance(data, HashingData)
    backup, metrics = _callbacks(
        stage, data, streamed, validation, settings["val_every"]
    )
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
            data.train,
            epochs=recipe.epochs,
            verbose=verbose,
            callbacks=[*metrics, *backup.callbacks],
        )
    except BaseException as error:
        if not (resume or backup.backed_up):  # no epoch to resume from
            shutil.rmtree(stage, ignore_errors=True)
        if streamed and isinstance(error, Exception):
            failure = decode_failure(error)
            if failure is not None:  # an image file that cannot be decoded
                raise ValueError(str(failure)) from None
        raise
    selection = _selection(backup, validation, settings["val_split"])
    return dict(model=model, logs=backup.history, seconds=backup.seconds(),
                command=command, data=data, validation=validation,
                selection=selection)  # fmt: skip


def _callbacks(stage, data, streamed, validation, val_every):
    """`(backup, metrics)`: the `RunBackup` and the validation mAP callbacks."""
    from keras_mlh.callbacks import RetrievalMetricsCallback
    from keras_mlh.callbacks.run_backup import RunBackup

    if validation is not None:
        # The package's protocol: val mAP on images held out of the training
        # set picks the epoch kept; the test queries never pick anything.
        queries, database = validation.queries, validation.database
    else:
        queries = (data.query if streamed else data.x_query, data.y_query)
        database = (data.database if streamed else data.x_database, data.y_database)
    metrics = []
    if val_every or validation is not None:
        metrics.append(
            RetrievalMetricsCallback(
                queries,
                database,
                every_n_epochs=val_every or 1,
                batch_size=max(data.batch_size, INFERENCE_BATCH_SIZE),
                verbose=0,
            )
        )
    return RunBackup(stage, monitor=None if validation is None else "val_map"), metrics


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


def _open_stage(stage, settings, recipe, data, source, resume, command):
    """Records or checks what a resumed run must share; the first command."""
    recorded = {**settings, "epochs": recipe.epochs, "source": source}
    recorded.update(
        batch_size=data.batch_size,
        num_classes=int(data.num_classes),
        image_shape=[int(d) for d in data.image_shape],
        counts=[len(data.y_train), len(data.y_query), len(data.y_database)],
    )
    recorded = json.loads(json.dumps(recorded))  # as stored: lists, not tuples
    path = os.path.join(stage, SETTINGS_FILE)
    if not resume:
        files.write_json({"settings": recorded, "command": command}, path)
        return command
    try:
        with open(path) as f:
            stored = json.load(f)
        old = stored["settings"]
    except (OSError, ValueError, KeyError, TypeError):
        old, stored = None, {}
    changed = [k for k in recorded if old is None or old.get(k) != recorded[k]]
    if changed:
        what = "its settings.json is unreadable"
        if old is not None:
            key = changed[0]
            what = f"{key}: {old.get(key)!r} then, {recorded[key]!r} now"
        raise ValueError(
            f"The interrupted run in {stage!r} was started with other settings or "
            f"data ({what}); resume with the same ones, or start afresh with "
            "--overwrite."
        )
    return stored.get("command")

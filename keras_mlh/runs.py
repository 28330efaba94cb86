"""Run folders: `train` writes one (what `keras-mlh train` runs), the rest read it.

A run folder holds `model.keras`, `history.json`, `split.npz` and `run.json`.
A run trains in a staging folder beside it (`.keras-mlh-train-NAME`), backed up
after every epoch, so `train(..., resume=True)` continues it after a kill.
"""

import json
import os
import shutil

import numpy as np

from keras_mlh import files
from keras_mlh.datasets import FileHashingData
from keras_mlh.datasets.image_pipeline import SMALL_BACKBONE, ImageRecipe
from keras_mlh.encoding import FILE_SPLIT_KEY
from keras_mlh.run_training import BACKUP_FOLDER, fit_run, read_log
from keras_mlh.version import __version__
from keras_mlh_runtime.code_files import load_npz

MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.npz"
RUN_FILE = "run.json"


def train(
    folder,
    data,
    *,
    source=None,
    bits=32,
    mode="mlh",
    backbone=SMALL_BACKBONE,
    backbone_weights=None,
    augment=False,
    epochs=None,
    learning_rate=None,
    seed=0,
    val_split=None,
    val_every=5,
    verbose=1,
    resume=False,
    overwrite=False,
    command=None,
):
    """Trains an MLH model with the default recipe and writes a run folder.

    Args:
        folder: the run folder; an earlier run is replaced only with `overwrite`.
        data: a `HashingData`, `FileHashingData` or `TfdsHashingData`.
        source: JSON-safe description of the data for `run.json`.
        bits, mode, backbone, backbone_weights: the model (as `MLH`'s).
        augment: random translations and rotations in training.
        epochs, learning_rate: the recipe's (`None`: its defaults).
        seed: seed of the weights and of the validation hold-out.
        val_split: images held out (count or fraction) to keep the epoch of
            the best validation mAP, or `None`.
        val_every: validation mAP (into the history) every N epochs; 0 never.
        verbose: `fit`'s verbosity.
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
    settings = dict(bits=bits, mode=mode, backbone=backbone, augment=augment,
                    backbone_weights=backbone_weights, epochs=epochs, seed=seed,
                    learning_rate=learning_rate, val_split=val_split,
                    val_every=val_every)  # fmt: skip
    source = source or {}
    inputs = [source.get("path"), source.get("image_root")]
    out = check_run_folder(folder, inputs=inputs, overwrite=overwrite, resume=resume)
    stage = stage_of(out)
    if not resume:  # nothing to resume there (checked), or `overwrite`
        shutil.rmtree(stage, ignore_errors=True)
    trained = fit_run(stage, data, source, settings, verbose, resume, command)
    with files.atomic_folder(out) as work:
        run_info = _write_run_folder(work, out, settings, source, **trained)
    shutil.rmtree(stage, ignore_errors=True)
    return run_info


def check_run_folder(folder, inputs=(), not_inside=(), overwrite=False, resume=False):
    """The absolute path of `folder`, checked to become a run folder that
    writes over no `inputs` and into no `not_inside` folder; creates nothing."""
    if resume and overwrite:
        raise ValueError(
            "--resume continues an interrupted run and --overwrite starts afresh; "
            "give one of them."
        )
    out = os.path.abspath(folder)
    done = 0 if overwrite else epochs_done(out)
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
    files.check_writable(out)
    return out


def stage_of(out):
    """The staging folder of the run folder `out` (absolute)."""
    name = f"{files.TEMP_PREFIX}train-{os.path.basename(out)}"
    return os.path.join(os.path.dirname(out), name)


def epochs_done(folder):
    """Epochs an interrupted run of `folder` has completed (0: none kept)."""
    stage = stage_of(os.path.abspath(folder))
    # `BackupAndRestore` writes it once the weights are saved: a backup is there.
    if not os.path.isfile(os.path.join(stage, BACKUP_FOLDER, "training_metadata.json")):
        return 0
    return max(map(len, read_log(stage)["history"].values()), default=0)


def _write_run_folder(
    work, out, settings, source, model, logs, seconds, command, data, validation,
    selection,
):  # fmt: skip
    """Writes the run folder's files into `work` (`data` as trained on)."""
    model.save(os.path.join(work, MODEL_FILE))
    files.write_json(logs, os.path.join(work, HISTORY_FILE))
    save_npz(
        os.path.join(work, SPLIT_FILE),
        **split_arrays(data, validation, source.get("unseen_classes")),
    )
    run_info = {
        "format": "keras-mlh-run",
        "keras_mlh_version": __version__,
        "command": command,
        "source": source,
        **{key: settings[key] for key in ("bits", "mode", "backbone")},
        "backbone_weights": settings["backbone_weights"] or "none",
        "augment": settings["augment"],
        "epochs": len(next(iter(logs.values()))) if logs else settings["epochs"],
        "batch_size": data.batch_size,
        "learning_rate": settings["learning_rate"],
        "seed": settings["seed"],
        "num_classes": int(data.num_classes),
        "class_names": data.class_names,
        "image_shape": [int(d) for d in data.image_shape],
        "multi_label": bool(data.multi_label),
        "num_train": int(len(data.y_train)),
        "num_queries": int(len(data.y_query)),
        "num_database": int(len(data.y_database)),
        "database_is_training_set": not isinstance(data, FileHashingData)
        or np.array_equal(data.train_paths, data.database_paths),
        "validation": selection,
        "unseen_classes": source.get("unseen_classes"),
        "image_recipe": ImageRecipe(
            data.image_size, data.resize_to, data.horizontal_flip
        ).run_info(data.color_mode)
        if hasattr(data, "resize_to")
        else None,
        "train_seconds": round(seconds, 3),
        "final_logs": {key: values[-1] for key, values in logs.items()},
        "files": {"model": MODEL_FILE, "history": HISTORY_FILE, "split": SPLIT_FILE},
        "folder": out,
    }
    files.write_json(run_info, os.path.join(work, RUN_FILE))
    return run_info


def split_arrays(data, validation=None, unseen_classes=None):
    """The arrays of a run folder's `split.npz`: pixels or image paths, labels,
    and the `validation` hold-out and `unseen_classes` when given."""
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


def load_split(path):
    """The arrays of a split file, checked for the four evaluation arrays."""
    arrays = load_npz(path, "Evaluation data")
    sides = ("query", "database")
    names = [f"{s}_paths" if FILE_SPLIT_KEY in arrays else f"x_{s}" for s in sides]
    keys = (names[0], "y_query", names[1], "y_database")
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(
            f"{path!r} lacks {', '.join(missing)}: evaluation needs "
            f"{', '.join(keys)}, as in the split.npz of a run folder."
        )
    for side, name in zip(sides, names, strict=True):
        images, labels = arrays[name], arrays[f"y_{side}"]
        if labels.ndim == 0 or images.ndim == 0 or len(labels) != len(images):
            raise ValueError(
                f"{path!r}: y_{side} has {labels.shape[0] if labels.ndim else 0} "
                f"labels but {name} {images.shape[0] if images.ndim else 0} "
                "images; give one label (or multi-hot row) per image."
            )
    return arrays


def load_history(path):
    """The per-epoch logs of a run's `history.json` at `path`, or `None`."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            history = json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot read the training history {path!r}: {error}"
        ) from None
    lists = isinstance(history, dict) and all(
        isinstance(v, list) for v in history.values()
    )
    if not lists:
        raise ValueError(
            f"{path!r} is not a training history (a JSON object of per-epoch "
            "lists, as `keras-mlh train` writes)."
        )
    return history


def save_npz(path, **arrays):
    """Writes arrays, compressed, to exactly `path` (`np.savez` would add `.npz`)."""
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)

"""Resumable training for `keras-mlh train`: the staging folder of a run.

A run `--out RUN` trains inside `.keras-mlh-train-NAME` beside it (`NAME`
the run folder's name). It holds:

- `resume.json`: the run's settings, from which `--resume RUN` trains on;
- `progress.json`: the epochs completed, their logs and training seconds,
  the checkpoint of the last one, and the best epoch by validation mAP so
  far (with `--val-split`);
- `checkpoint-EPOCH.weights.h5`: the model and optimizer after that epoch
  (the optimizer's step count drives the learning-rate schedule);
- `best-EPOCH.weights.h5`: the same after the best epoch so far, so a
  resumed run keeps the best epoch of the whole run, not of its last part;
- `lock`: `flock`ed by the `train` using it now, holding its process id.

Each epoch's checkpoint (and best checkpoint) is written under a temporary
name and renamed, then `progress.json` is replaced atomically: a `kill -9` loses at most the epoch
in progress. The folder is kept when training stops after at least one
completed epoch, so `keras-mlh train --resume RUN` can continue; it is
removed when the run folder is complete, or by a fresh `train --out RUN
--overwrite`.
"""

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import time

from keras_mlh import files
from keras_mlh.cli.errors import CLIError

STAGE_TAG = "train"
SETTINGS_FILE = "resume.json"
PROGRESS_FILE = "progress.json"
LOCK_FILE = "lock"
CHECKPOINT_FILE = "checkpoint-{epoch}.weights.h5"
BEST_FILE = "best-{epoch}.weights.h5"
SETTINGS_FORMAT = "keras-mlh-resumable-run"
PATH_SETTINGS = (
    "npz",
    "folder",
    "lists",
    "image_root",
    "tfds_data_dir",
    "fashion_mnist",
    "out",
)
# Settings not stored: how this invocation shows progress, or what it is.
NOT_SETTINGS = (
    "handler",
    "parser",
    "argv",
    "from_command_line",
    "debug",
    "verbose",
    "resume",
    "overwrite",
)


class Stage:
    """The staging folder of the run folder `out`.

    Args:
        out: the run folder (absolute path).
    """

    def __init__(self, out):
        self.out = out
        self.path = os.path.join(
            os.path.dirname(out),
            f"{files.TEMP_PREFIX}{STAGE_TAG}-{os.path.basename(out)}",
        )

    def exists(self):
        return os.path.isdir(self.path)

    def settings(self):
        """The stored settings (a dict), or `None` when they cannot be read."""
        data = _read_json(os.path.join(self.path, SETTINGS_FILE))
        if not isinstance(data, dict) or data.get("format") != SETTINGS_FORMAT:
            return None
        return data.get("settings")

    def progress(self):
        """`{"epoch", "history", "seconds", "weights"}` of the last completed
        epoch; epoch 0 and no weights before the first.

        Raises:
            CLIError: when `progress.json` is there but damaged: resuming
                from epoch 1 would silently drop the checkpoint beside it.
        """
        path = os.path.join(self.path, PROGRESS_FILE)
        if not os.path.lexists(path):  # written after the first epoch
            return {"epoch": 0, "history": {}, "seconds": 0.0, "weights": None}
        data = _read_json(path)
        if not _is_progress(data, self.path):
            raise CLIError(
                f"The progress record {path!r} is damaged, so the epoch to resume "
                "from is unknown; restore the file, or pass --overwrite (without "
                f"--resume) to train {self.out!r} afresh from epoch 1."
            )
        return data

    def owner(self):
        """The pid of the live process training in this folder, or `None`.

        Live means holding the `flock` of the lock file: the OS drops it
        when the process ends, even by `kill -9`, so a lock is never stale.
        """
        try:
            handle = os.open(os.path.join(self.path, LOCK_FILE), os.O_RDONLY)
        except OSError:
            return None
        with os.fdopen(handle) as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
                return None  # nobody holds it (released on close)
            except BlockingIOError:
                pid = f.read().strip()
                # Empty while the holder is still writing its pid.
                return int(pid) if pid.isdigit() else "starting"

    def check_free(self):
        """Refuses when a live `train` holds the folder (its lock file)."""
        pid = self.owner() if self.exists() else None
        if pid is not None:
            raise CLIError(
                f"Another `keras-mlh train` (process {pid}) is training "
                f"{self.out!r} now; wait for it to finish."
            )

    def data_digest(self):
        """The digest of the training data the run started with, or `None`."""
        data = _read_json(os.path.join(self.path, SETTINGS_FILE))
        return data.get("data_digest") if isinstance(data, dict) else None

    def create(self, settings, data_digest=None):
        """Makes the folder with `settings` in one step (renamed into place).

        Refuses when another `train` made it first (a rename never replaces
        a folder that has files).
        """
        parent = os.path.dirname(self.path)
        os.makedirs(parent, exist_ok=True)
        work = tempfile.mkdtemp(prefix=files.TEMP_PREFIX, dir=parent)
        try:
            files.write_json(
                {
                    "format": SETTINGS_FORMAT,
                    "settings": settings,
                    "data_digest": data_digest,
                },
                os.path.join(work, SETTINGS_FILE),
            )
            try:
                os.rename(work, self.path)
            except OSError as error:
                if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                    raise  # not a race: the OS's reason, named by `main`
                raise CLIError(
                    f"Another `keras-mlh train` started training {self.out!r} "
                    "meanwhile; wait for it to finish."
                ) from None
        finally:
            shutil.rmtree(work, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self):
        """Holds the lock file's `flock` while the block runs; refuses a live
        owner. The file stays (removing it would let a later `train` lock a
        new file while a waiting one locks the old); `discard` removes it.
        """
        try:
            handle = os.open(
                os.path.join(self.path, LOCK_FILE), os.O_CREAT | os.O_RDWR, 0o666
            )
        except FileNotFoundError:
            raise  # the folder went meanwhile
        except OSError as error:
            raise CLIError(f"Could not lock {self.path!r}: {error.strerror}.") from None
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.check_free()
                raise CLIError(f"Could not lock {self.path!r}; try again.") from None
            os.ftruncate(handle, 0)
            os.write(handle, str(os.getpid()).encode())
            yield self
        finally:
            os.close(handle)  # releases the lock

    def discard(self):
        """Removes the folder; only for the `train` holding its lock."""
        shutil.rmtree(self.path, ignore_errors=True)

    def discard_unused(self):
        """Removes the folder of a stopped `train`; refuses a live one.

        Under the lock: a `train` that took the folder since it was last
        checked is not pulled from under.
        """
        if self.exists():
            with contextlib.suppress(FileNotFoundError), self.locked():
                self.discard()


def settings_of(args):
    """The JSON-safe settings of a `train` invocation, stored for `--resume`."""
    settings = {}
    for key, value in vars(args).items():
        if key in NOT_SETTINGS:
            continue
        settings[key] = _setting(key, value)
    return settings


def _setting(key, value):
    """A value as stored: lists for tuples, absolute paths for the data."""
    if key in PATH_SETTINGS and value is not None:
        return os.path.abspath(value)  # --resume may run from another folder
    return list(value) if isinstance(value, tuple) else value


def resumed_args(args):
    """The stored settings of the interrupted run `args.resume`, as `args`.

    Options given with `--resume` must agree with the stored ones (only
    `--verbose`/`-q` and `--debug` may change); `--overwrite` is refused.

    Args:
        args: the parsed `train` options with `resume` set.

    Returns:
        `(args, stage)`: the options to train with and the `Stage`.
    """
    out = os.path.abspath(args.resume)
    if args.overwrite:
        raise CLIError(
            "--resume continues an interrupted run and --overwrite starts afresh; "
            "give one of them."
        )
    stage = Stage(out)
    if os.path.isfile(os.path.join(out, "run.json")):
        stage.discard_unused()  # left by a run stopped just after it finished
        raise CLIError(f"{out!r} is a finished run folder; there is nothing to resume.")
    settings = stage.settings() if stage.exists() else None
    if settings is None:
        raise CLIError(
            f"No interrupted run of {out!r} to resume (no {stage.path!r} with "
            f"{SETTINGS_FILE}); it is kept only after at least one completed epoch. "
            "Start it with `keras-mlh train --out RUN`."
        )
    given = _given_options(args)
    for key in given:
        if key in NOT_SETTINGS or key not in settings:
            continue
        value = getattr(args, key)
        stored = settings[key]
        if _setting(key, value) != stored:
            flag = "--" + key.replace("_", "-")
            raise CLIError(
                f"{flag} {value!r} conflicts with the interrupted run, which used "
                f"{flag} {stored!r}; --resume trains on with the run's own settings: "
                "drop the option, or start a new run with --overwrite."
            )
    for key, value in settings.items():
        current = getattr(args, key, None)
        if not _same_kind(value, current):
            raise CLIError(
                f"The settings of the interrupted run in {stage.path!r} are damaged "
                f"({key}={value!r}); start afresh with `keras-mlh train --out RUN "
                "--overwrite`."
            )
        is_size = key in ("image_size", "resize_size") and value
        setattr(args, key, tuple(value) if is_size else value)
    args.out = out
    return args, stage


def data_digest(data):
    """A digest of the training data: a resumed run checks its data.

    Args:
        data: a `keras_mlh.datasets.HashingData` (its arrays are digested),
            `FileHashingData` (its paths and labels, never the pixels, which
            would mean reading every image) or other data (not digested).

    Returns:
        A hex SHA-256 of the shapes, dtypes and bytes of the training, query
        and database arrays (or paths), or `None` when they are not numpy
        arrays.
    """
    import hashlib

    import numpy as np

    from keras_mlh.datasets import FileHashingData, HashingData

    if isinstance(data, FileHashingData):
        names = ("train_paths", "y_train", "query_paths", "y_query")
        names += ("database_paths", "y_database")
    elif isinstance(data, HashingData):
        names = ("x_train", "y_train", "x_query", "y_query")
        names += ("x_database", "y_database")
    else:
        return None  # streamed from tfds: decoding it all is not a check
    digest = hashlib.sha256()
    for name in names:
        array = getattr(data, name, None)
        if not isinstance(array, np.ndarray):
            return None
        digest.update(f"{name}{array.shape}{array.dtype}".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def check_same_data(stage, digest):
    """Refuses to resume a run on training data other than it started with."""
    stored = stage.data_digest()
    if stored is not None and digest is not None and stored != digest:
        raise CLIError(
            f"The training data of the interrupted run {stage.out!r} has changed "
            "since it started (a different file, folder or sample); resuming "
            "would mix two datasets. Restore the data, or start afresh with "
            "--overwrite."
        )


def _same_kind(stored, current):
    """Whether a stored setting has the type the option parses to."""
    if stored is None or current is None:
        return True
    if isinstance(current, bool) or isinstance(stored, bool):
        return isinstance(current, bool) and isinstance(stored, bool)
    if isinstance(current, (int, float)):
        return isinstance(stored, (int, float))
    if isinstance(current, (tuple, list)):
        return isinstance(stored, list)
    return isinstance(stored, type(current))


def _given_options(args):
    """The `train` options written on the command line (not defaults)."""
    argv = list(getattr(args, "argv", None) or [])
    if "train" not in argv or getattr(args, "parser", None) is None:
        return []
    missing = object()
    namespace = type(args)(**{key: missing for key in vars(args)})
    args.parser.parse_known_args(argv[argv.index("train") + 1 :], namespace)
    return [key for key, value in vars(namespace).items() if value is not missing]


def checkpoint_callback(stage, start, monitor=None):
    """A Keras callback saving model, optimizer and logs after each epoch.

    Args:
        stage: the `Stage`.
        start: its `progress()` when training starts (restored first).
        monitor: `None`, or a log to maximize (`"val_map"`): the epoch with
            its highest value so far, earlier sessions of the run included,
            is kept in `best-EPOCH.weights.h5` and `progress.json`, and
            `restore_best()` loads it after training.

    Returns:
        The callback; put it after the callbacks that add to the logs.

    Example:
    >>> checkpoint = checkpoint_callback(stage, stage.progress(), "val_map")  # doctest: +SKIP
    >>> model.fit(train, epochs=10, callbacks=[metrics, checkpoint])  # doctest: +SKIP
    >>> best = checkpoint.restore_best()  # {"epoch": 4, "value": 0.61, ...}  # doctest: +SKIP
    """
    import keras

    class EpochCheckpoint(keras.callbacks.Callback):
        """Restores the last checkpoint at the start; saves one per epoch."""

        def __init__(self):
            super().__init__()
            self.history = {key: list(v) for key, v in start["history"].items()}
            self.started = time.perf_counter()
            stored = start.get("best") if monitor else None
            # The best epoch of the sessions before this one (`--resume`).
            usable = _is_best_record(stored, monitor, stage.path)
            self.best = stored if usable else None

        def seconds(self):
            """Training seconds of this run, earlier sessions included."""
            return float(start["seconds"]) + time.perf_counter() - self.started

        def on_train_begin(self, logs=None):
            # `MLH.fit` has built the model and its optimizer by now.
            if start["weights"]:
                self.model.load_weights(os.path.join(stage.path, start["weights"]))

        def on_epoch_end(self, epoch, logs=None):
            for key, value in (logs or {}).items():
                values = self.history.setdefault(key, [])
                del values[epoch:]  # an epoch that is run again replaces its logs
                values.append(float(value))
            name = CHECKPOINT_FILE.format(epoch=epoch + 1)
            partial = os.path.join(stage.path, f"partial-{name}")
            target = os.path.join(stage.path, name)
            value = (logs or {}).get(monitor) if monitor else None
            # Strictly better, as EarlyStopping: a tie keeps the earlier epoch.
            improved = value is not None and (
                self.best is None or float(value) > self.best["value"]
            )
            self.model.save_weights(partial)
            os.replace(partial, target)
            if improved:
                best_name = BEST_FILE.format(epoch=epoch + 1)
                best_partial = os.path.join(stage.path, f"partial-{best_name}")
                shutil.copyfile(target, best_partial)
                os.replace(best_partial, os.path.join(stage.path, best_name))
                self.best = {
                    "monitor": monitor,
                    "epoch": epoch + 1,
                    "value": float(value),
                    "weights": best_name,
                }
            progress = {
                "epoch": epoch + 1,
                "history": self.history,
                "seconds": self.seconds(),
                "weights": name,
                "best": self.best,
            }
            files.write_json(progress, os.path.join(stage.path, PROGRESS_FILE))
            keep = {name, self.best["weights"] if self.best else None}
            for old in os.listdir(stage.path):
                if old.startswith(("checkpoint-", "best-", "partial-")) and (
                    old not in keep
                ):
                    with contextlib.suppress(OSError):
                        os.remove(os.path.join(stage.path, old))

        def restore_best(self):
            """Loads the best epoch's weights into the model.

            Returns:
                `{"monitor", "epoch" (1-based), "value", "weights"}` of the
                best epoch of the whole run, or `None` when no epoch logged
                `monitor`.
            """
            if self.best is not None:
                self.model.load_weights(os.path.join(stage.path, self.best["weights"]))
            return self.best

    return EpochCheckpoint()


def _is_best_record(record, monitor, folder):
    """Whether `progress.json`'s `best` is a record for `monitor` whose
    weights file is in `folder` (a damaged record starts the choice afresh)."""
    return (
        isinstance(record, dict)
        and record.get("monitor") == monitor
        and isinstance(record.get("epoch"), int)
        and isinstance(record.get("value"), (int, float))
        and isinstance(record.get("weights"), str)
        and os.path.basename(record["weights"]) == record["weights"]
        and os.path.isfile(os.path.join(folder, record["weights"]))
    )


def _is_progress(data, folder):
    """Whether `data` is a progress record as `checkpoint_callback` writes it,
    its checkpoint in `folder`."""
    return (
        isinstance(data, dict)
        and isinstance(data.get("epoch"), int)
        and data["epoch"] >= 1
        and isinstance(data.get("history"), dict)
        and isinstance(data.get("seconds"), (int, float))
        and isinstance(data.get("weights"), str)
        and os.path.basename(data["weights"]) == data["weights"]
        and os.path.isfile(os.path.join(folder, data["weights"]))
    )


def _read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

"""`RunBackup`: Keras's `BackupAndRestore`, plus the logs and the best epoch."""

import os
import re
import time

import keras

from keras_mlh.files import write_json
from keras_mlh.run_training import BACKUP_FOLDER, LOG_FILE, read_log

BEST_FILE = "best-{epoch}.weights.h5"
_BEST_NAME = re.compile(r"best-(\d+)\.weights\.h5")


class RunBackup(keras.callbacks.BackupAndRestore):
    """Backs up a run after every epoch; a new `fit` on `folder` resumes it.

    A run killed (even by `kill -9`) continues after its last completed epoch,
    from `BackupAndRestore`'s backup (`folder/backup`). `folder` also keeps
    each epoch's logs and the training seconds (`epochs.json`, replaced
    atomically before each backup) and, with a `monitor`, the best epoch's
    weights (`best-EPOCH.weights.h5`), so a resumed run keeps the best epoch
    of the whole run. Pass `backup.callbacks` to `fit` after the callbacks
    that add to the logs (`RetrievalMetricsCallback`).

    Args:
        folder: a folder of this run only (created when needed).
        monitor: `None`, or a log to maximize (`"val_map"`): the weights of
            its best epoch (the earlier of a tie) are kept for `restore_best()`.

    Example:
    >>> backup = RunBackup("runs/.stage", monitor="val_map")  # doctest: +SKIP
    >>> model.fit(train, epochs=10, callbacks=[metrics, *backup.callbacks])  # doctest: +SKIP
    >>> backup.restore_best()  # {"epoch": 4, "value": 0.61}  # doctest: +SKIP
    """

    def __init__(self, folder, monitor=None):
        # Two backups: a kill while one is written leaves the other.
        super().__init__(
            os.path.join(folder, BACKUP_FOLDER),
            double_checkpoint=True,
            delete_checkpoint=False,  # the caller removes `folder` when done
        )
        self.folder = folder
        self.monitor = monitor
        record = read_log(folder)
        self.history, self.earlier_seconds = record["history"], record["seconds"]
        self.resumed_at = None
        self.backed_up = 0  # epochs backed up by this session
        self.started = time.perf_counter()
        self.best_checkpoint = None
        if monitor is not None:
            self.best_checkpoint = keras.callbacks.ModelCheckpoint(
                os.path.join(folder, BEST_FILE),
                monitor=monitor,
                mode="max",
                save_best_only=True,
                save_weights_only=True,
            )

    @property
    def callbacks(self):  # the best epoch's checkpoint runs before the backup
        return [c for c in (self.best_checkpoint, self) if c is not None]

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        super().on_train_begin(logs)  # restores the last backup, if any

    def on_epoch_begin(self, epoch, logs=None):
        if self.resumed_at is None:
            # The first epoch of this session: after the backup's epoch. Logs
            # and best weights of a later epoch (killed before its backup) go.
            self.resumed_at = epoch
            self.history = {key: v[:epoch] for key, v in self.history.items()}
            best = self.best()
            if best is not None:
                self.best_checkpoint.best = best["value"]
            if epoch:
                print(f"Resuming after epoch {epoch} of {self.params['epochs']}")
        # Best-epoch files other than the best go; the best one is replaced
        # only once a later epoch's backup is written.
        keep = self.best()
        for old in _best_epochs(self.folder):
            if old > epoch or keep is None or old < keep["epoch"]:
                os.remove(os.path.join(self.folder, BEST_FILE.format(epoch=old)))

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        record = {"history": self.history, "seconds": self.seconds()}
        write_json(record, os.path.join(self.folder, LOG_FILE))
        super().on_epoch_end(epoch, logs)  # the backup, last
        self.backed_up += 1

    def seconds(self):  # earlier sessions included
        return self.earlier_seconds + time.perf_counter() - self.started

    def best(self):
        """`{"epoch" (1-based), "value"}` of the best epoch so far, or `None`
        (the newest best-epoch file logged: only improvements are written)."""
        values = self.history.get(self.monitor) if self.monitor else None
        epochs = [e for e in _best_epochs(self.folder) if e <= len(values or ())]
        if not epochs:
            return None
        return {"epoch": max(epochs), "value": values[max(epochs) - 1]}

    def restore_best(self):
        """Loads the best epoch's weights into the model; returns `best()`."""
        best = self.best()
        if best is not None:
            name = BEST_FILE.format(epoch=best["epoch"])
            self.model.load_weights(os.path.join(self.folder, name))
        return best


def _best_epochs(folder):
    names = os.listdir(folder) if os.path.isdir(folder) else ()
    return sorted(int(m[1]) for m in map(_BEST_NAME.fullmatch, names) if m)

"""`RunBackup`: Keras's `BackupAndRestore`, plus the logs and the best epoch."""

import os
import re
import time

import keras
import numpy as np

from keras_mlh.files import write_json
from keras_mlh.runs import BACKUP_FOLDER, LOG_FILE, read_log

BEST_FILE = "best-{epoch}.weights.h5"


class RunBackup(keras.callbacks.BackupAndRestore):
    """Backs up a run after every epoch; a new `fit` on `folder` resumes it.

    A run killed (even by `kill -9`) continues after its last backed-up epoch;
    `folder` also keeps each epoch's logs and seconds (`epochs.json`) and, with
    `monitor`, the best epoch's weights. Pass it to `fit` after the callbacks
    that add to the logs (`RetrievalMetricsCallback`).

    Args:
        folder: a folder of this run only (created when needed).
        monitor: `None`, or a log to maximize (`"val_map"`): the weights of
            its best epoch (the earlier of a tie) are kept for `restore_best()`.
        record: a `runs.read_log` record (`history`, `seconds`, ...); `folder`'s.

    Example:
    >>> backup = RunBackup("runs/.stage", monitor="val_map")  # doctest: +SKIP
    >>> model.fit(train, epochs=10, callbacks=[metrics, backup])  # doctest: +SKIP
    >>> backup.restore_best()  # {"epoch": 4, "value": 0.61}  # doctest: +SKIP
    """

    def __init__(self, folder, monitor=None, record=None):
        # Two backups: a kill while one is written leaves the other.
        super().__init__(
            os.path.join(folder, BACKUP_FOLDER),
            double_checkpoint=True,
            delete_checkpoint=False,  # the caller removes `folder` when done
        )
        self.folder, self.monitor = folder, monitor
        self.record = record = record or read_log(folder)
        self.history, self.earlier_seconds = record["history"], record["seconds"]
        self.resumed_at = None
        self.backed_up = 0  # epochs backed up by this session
        self.started = time.perf_counter()

    def on_train_begin(self, logs=None):
        self.started = time.perf_counter()
        super().on_train_begin(logs)  # restores the last backup, if any

    def on_epoch_begin(self, epoch, logs=None):
        if self.resumed_at is None:
            # The first epoch of this session, after the backup's epoch: the
            # logs and best weights of a later epoch (killed before its backup) go.
            self.resumed_at = epoch
            self.history = {key: v[:epoch] for key, v in self.history.items()}
            if epoch:
                print(f"Resuming after epoch {epoch} of {self.params['epochs']}")
        # The best epoch's file is the one kept once its backup is written.
        best = self.best()
        keep = best and BEST_FILE.format(epoch=best["epoch"])
        for name in os.listdir(self.folder) if os.path.isdir(self.folder) else ():
            if re.fullmatch(r"best-\d+\.weights\.h5", name) and name != keep:
                os.remove(os.path.join(self.folder, name))

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(value))
        if (self.best() or {}).get("epoch") == epoch + 1:
            os.makedirs(self.folder, exist_ok=True)
            name = BEST_FILE.format(epoch=epoch + 1)
            self.model.save_weights(os.path.join(self.folder, name))
        self.record.update(history=self.history, seconds=self.seconds())
        write_json(self.record, os.path.join(self.folder, LOG_FILE))
        super().on_epoch_end(epoch, logs)  # the backup, last
        self.backed_up += 1

    def seconds(self):  # earlier sessions included
        return self.earlier_seconds + time.perf_counter() - self.started

    def best(self):
        """`{"epoch" (1-based), "value"}` of the best epoch so far, or `None`."""
        values = self.history.get(self.monitor) if self.monitor else None
        if not values:
            return None
        epoch = int(np.argmax(values)) + 1  # the first of a tie
        return {"epoch": epoch, "value": values[epoch - 1]}

    def restore_best(self):
        """Loads the best epoch's weights into the model; returns `best()`."""
        best = self.best()
        if best is not None:
            name = BEST_FILE.format(epoch=best["epoch"])
            self.model.load_weights(os.path.join(self.folder, name))
        return best

"""`RetrievalMetricsCallback`: validation mAP@K in the logs during `fit`."""

import keras
import numpy as np

from keras_mlh.labels import check_labels
from keras_mlh.metrics import mean_average_precision
from keras_mlh.models.inputs import is_tf_dataset
from keras_mlh_runtime.errors import check_positive_int


class RetrievalMetricsCallback(keras.callbacks.Callback):
    """Computes validation mAP@K during `fit` and writes it into the logs.

    Every `every_n_epochs` epochs (and at the last), `logs[name]` gets mAP@K
    for `EarlyStopping`, `ModelCheckpoint` and `History`; the epochs between
    repeat the last value, so monitors always find the key.

    Args:
        query_data: `(images, labels)` of the queries, the images an array or
            a batched dataset (encoded batch by batch); or a dataset of
            `(images, labels)` (its labels read in one pass).
        database_data: the same for the items searched; `None` uses the
            queries (each query then also finds itself).
        k: mAP cut-off; `None` for mAP@all.
        every_n_epochs: how often to evaluate.
        name: log key.
        batch_size: encoding batch size.
        verbose: print the value when computed.

    Example:
    >>> callback = RetrievalMetricsCallback((x_val, y_val), (x_db, y_db))  # doctest: +SKIP
    >>> model.fit(data.train, epochs=30, callbacks=[callback,  # doctest: +SKIP
    ...     keras.callbacks.EarlyStopping("val_map", mode="max", patience=5)])
    """

    def __init__(
        self,
        query_data,
        database_data=None,
        k=None,
        every_n_epochs=1,
        name="val_map",
        batch_size=256,
        verbose=1,
    ):
        super().__init__()
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs)
        self.query_images, self.query_labels = _pair(query_data, "query_data")
        self.database_images, self.database_labels = (
            (self.query_images, self.query_labels)
            if database_data is None
            else _pair(database_data, "database_data")
        )
        self.k, self.name, self.batch_size, self.verbose = k, name, batch_size, verbose
        self.last_value = None

    def on_train_begin(self, logs=None):
        if not hasattr(self.model, "encode"):
            raise ValueError(
                "RetrievalMetricsCallback needs a model with an `encode(images)` "
                "method returning ±1 codes, such as keras_mlh.MLH."
            )

    def on_epoch_end(self, epoch, logs=None):
        last = self.params.get("epochs") == epoch + 1
        if (epoch + 1) % self.every_n_epochs == 0 or last or self.last_value is None:
            queries = self._encode(self.query_images)
            database = self._encode(self.database_images)
            self.last_value = mean_average_precision(
                queries, self.query_labels, database, self.database_labels, k=self.k
            )
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.name} = {self.last_value:.4f}")
        if logs is not None:
            logs[self.name] = self.last_value

    def _encode(self, images):
        if not is_tf_dataset(images):
            return self.model.encode(images, batch_size=self.batch_size)
        # Batch by batch, never all pixels in memory; rebatched, as one predict
        # call per small batch is slow.
        return np.concatenate(
            [
                self.model.encode(
                    batch[0] if isinstance(batch, tuple) else batch,
                    batch_size=self.batch_size,
                )
                for batch in images.rebatch(self.batch_size).as_numpy_iterator()
            ]
        )


def _pair(data, name):
    """`(images, labels)` of one side, checked."""
    if is_tf_dataset(data):
        labels = [np.asarray(y) for _, y in data.as_numpy_iterator()]
        if not labels:
            raise ValueError(f"`{name}` is empty: it yields no batch.")
        return data, check_labels(np.concatenate(labels), name=f"{name} labels")
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(
            f"`{name}` must be an (images, labels) pair of arrays or a batched "
            "tf.data dataset of (images, labels)."
        )
    if is_tf_dataset(data[0]):
        return data[0], check_labels(data[1], name=f"{name} labels")
    images = np.asarray(data[0])
    if not len(images):
        raise ValueError(f"`{name}` holds no image: give at least one.")
    return images, check_labels(data[1], num_images=len(images), name=f"{name} labels")

"""`RetrievalMetricsCallback`: validation mAP@K in the logs during `fit`."""

import keras
import numpy as np

from keras_mlh.encoding import Images, encode_images
from keras_mlh.labels import check_labels
from keras_mlh.metrics import mean_average_precision
from keras_mlh.models.inputs import is_tf_dataset
from keras_mlh_runtime.errors import check_positive_int


class RetrievalMetricsCallback(keras.callbacks.Callback):
    """Writes validation mAP@K into the logs during `fit`, as `logs[name]`.

    Computed every `every_n_epochs` epochs and at the last; the epochs between
    repeat the last value, so `EarlyStopping` or `ModelCheckpoint` always find it.

    Args:
        query_data: `(images, labels)`, the images an array or a batched
            dataset; or a dataset of `(images, labels)`.
        database_data: the same for the items searched; `None`: the queries.
        k: mAP cut-off; `None` for mAP@all.
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
        self.queries = self.database = _pair(query_data, "query_data")
        if database_data is not None:
            self.database = _pair(database_data, "database_data")
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
            codes = [self._encode(*pair) for pair in (self.queries, self.database)]
            self.last_value = mean_average_precision(
                codes[0], self.queries[1], codes[1], self.database[1], k=self.k
            )
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: {self.name} = {self.last_value:.4f}")
        if logs is not None:
            logs[self.name] = self.last_value

    def _encode(self, images, labels):
        if not is_tf_dataset(images):
            return self.model.encode(images, batch_size=self.batch_size)

        seen = 0  # images read, checked once `predict` is done with them

        def chunks(size):  # never all pixels in memory
            nonlocal seen
            batches = images.rebatch(size).as_numpy_iterator()
            for batch in batches:
                pixels = batch[0] if isinstance(batch, tuple) else batch
                seen += len(pixels)
                if seen == len(labels) and next(batches, None) is not None:
                    seen += 1  # a batch more than `predict` takes: more images
                yield pixels

        codes = encode_images(self.model, Images(len(labels), chunks), self.batch_size)
        if seen != len(labels):
            raise ValueError(
                f"A streamed set holds {'more' if seen > len(labels) else seen} "
                f"images but {len(labels)} labels; give one label per image."
            )
        return codes


def _pair(data, name):
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

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_mlh import MLH
from keras_mlh.callbacks import RetrievalMetricsCallback, retrieval_metrics
from keras_mlh.metrics import mean_average_precision


def test_val_map_in_logs_every_n_epochs_and_early_stopping(small_mnist):
    queries = (small_mnist.x_query, small_mnist.y_query)
    database = (small_mnist.x_database, small_mnist.y_database)
    callback = RetrievalMetricsCallback(queries, database, every_n_epochs=2, verbose=0)
    stopper = keras.callbacks.EarlyStopping(monitor="val_map", mode="max", patience=10)
    model = MLH(num_classes=10, bits=16)
    model.compile()
    history = model.fit(
        small_mnist.train, epochs=3, verbose=0, callbacks=[callback, stopper]
    )
    values = history.history["val_map"]
    assert len(values) == 3
    expected = mean_average_precision(
        model.encode(small_mnist.x_query),
        small_mnist.y_query,
        model.encode(small_mnist.x_database),
        small_mnist.y_database,
    )
    assert values[-1] == pytest.approx(expected)  # the last epoch is always computed
    assert 0.1 < values[-1] <= 1.0


# Once (under TensorFlow): the callback's streaming is numpy around
# `encode_images`, which tests/test_cli_encode.py streams on every backend;
# test_val_map_in_logs_every_n_epochs_and_early_stopping runs the callback
# inside fit on every backend.
@pytest.mark.backend_independent
def test_a_streamed_validation_set_goes_through_the_one_encode_loop(
    small_mnist, monkeypatch
):
    x_query, y_query = small_mnist.x_query, small_mnist.y_query
    x_database, y_database = small_mnist.x_database[:300], small_mnist.y_database[:300]
    queries = tf.data.Dataset.from_tensor_slices((x_query, y_query)).batch(7)
    database = (tf.data.Dataset.from_tensor_slices(x_database).batch(50), y_database)
    counts, encode_images = [], retrieval_metrics.encode_images

    def counted(model, images, batch_size):
        counts.append(images.count)
        return encode_images(model, images, batch_size)

    monkeypatch.setattr(retrieval_metrics, "encode_images", counted)
    callback = RetrievalMetricsCallback(queries, database, batch_size=32, verbose=0)
    model = MLH(num_classes=10, bits=16)
    model.compile()
    history = model.fit(small_mnist.train, epochs=1, verbose=0, callbacks=[callback])
    assert counts == [len(y_query), len(y_database)]
    expected = mean_average_precision(
        model.encode(x_query), y_query, model.encode(x_database), y_database
    )
    assert history.history["val_map"] == [pytest.approx(expected)]


def test_skipped_epochs_repeat_the_last_value(small_mnist):
    class StubModel(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(1)
            self.encodes = 0

        def call(self, x):
            return self.dense(keras.ops.reshape(x, (keras.ops.shape(x)[0], -1)))

        def encode(self, images, batch_size=256):
            self.encodes += 1
            return np.where(images.reshape(len(images), -1)[:, :16] > 100, 1, -1)

    model = StubModel()
    model.compile(optimizer="sgd", loss="mse")
    x = small_mnist.x_query[:32].astype("float32")
    callback = RetrievalMetricsCallback(
        (x, small_mnist.y_query[:32]), every_n_epochs=3, verbose=0
    )
    history = model.fit(x, np.zeros(32), epochs=4, verbose=0, callbacks=[callback])
    assert model.encodes == 3 * 2  # epochs 1, 3 and 4; queries and database each
    assert len(set(history.history["val_map"])) == 1


def test_bad_arguments():
    images, labels = np.zeros((4, 8, 8, 1)), np.zeros(4)
    with pytest.raises(ValueError, match="every_n_epochs"):
        RetrievalMetricsCallback((images, labels), every_n_epochs=0)
    with pytest.raises(ValueError, match="pair"):
        RetrievalMetricsCallback(images)
    with pytest.raises(ValueError, match="4 images but 2"):
        RetrievalMetricsCallback((images, labels[:2]))
    # A streamed set must hold one image per label, whatever its batching.
    model = MLH(num_classes=4, bits=8)
    model.build((None, 8, 8, 1))
    for count, match in ((50, "more images but 48"), (40, "40 images but 48")):
        streamed = tf.data.Dataset.from_tensor_slices(np.zeros((count, 8, 8, 1)))
        callback = RetrievalMetricsCallback(
            (streamed.batch(16), np.arange(48) % 4), batch_size=16, verbose=0
        )
        callback.set_model(model)
        callback.set_params({"epochs": 1})
        with pytest.raises(ValueError, match=match):
            callback.on_epoch_end(0)
    model = keras.Sequential([keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="encode"):
        model.fit(
            np.zeros((4, 2)),
            np.zeros(4),
            epochs=1,
            verbose=0,
            callbacks=[RetrievalMetricsCallback((images, labels))],
        )

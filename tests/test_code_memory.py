import keras
import numpy as np
import pytest
from helpers import run_layer_test, run_serialization_test

from keras_mlh.layers import CodeMemory


def _batch(n, start=0, bits=8, classes=3):
    codes = np.tile(np.arange(start, start + n, dtype="float32")[:, None], (1, bits))
    labels = np.eye(classes, dtype="float32")[np.arange(start, start + n) % classes]
    return codes, labels


def test_returns_the_contents_before_the_write_then_stores_the_batch():
    memory = CodeMemory(size=4, bits=8, num_classes=3)
    codes, labels = _batch(3, start=1)
    before = run_layer_test(
        memory,
        (codes, labels),
        {"codes": (4, 8), "labels": (4, 3), "weights": (4,)},
        training=True,
    )
    assert np.all(keras.ops.convert_to_numpy(before["weights"]) == 0)
    assert np.all(keras.ops.convert_to_numpy(before["codes"]) == 0)
    after = memory(codes[:1], labels[:1], training=False)
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(after["weights"]), [1, 1, 1, 0]
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(after["codes"])[:3, 0], [1, 2, 3]
    )
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(after["labels"])[:3], labels
    )
    assert int(memory.position.numpy()) == 3


def test_wraps_around_as_a_queue_and_ignores_inference_batches():
    memory = CodeMemory(size=4, bits=8, num_classes=3)
    memory(*_batch(3, start=1), training=True)
    memory(*_batch(3, start=4), training=True)  # slots 3, 0, 1
    memory(*_batch(5, start=50), training=False)  # not stored
    np.testing.assert_array_equal(memory.codes.numpy()[:, 0], [5, 6, 3, 4])
    assert int(memory.position.numpy()) == 2
    # A batch larger than the memory keeps its last `size` codes.
    memory(*_batch(6, start=10), training=True)
    assert sorted(memory.codes.numpy()[:, 0].tolist()) == [12, 13, 14, 15]


def test_stores_detached_codes(gradients):
    memory = CodeMemory(size=4, bits=8, num_classes=3)
    _, labels = _batch(2)

    def stored_sum(codes):
        memory(codes, labels, training=True)
        return keras.ops.sum(memory(codes, labels, training=False)["codes"])

    (grad,) = gradients(stored_sum, np.ones((2, 8)))
    assert np.all(grad == 0)


def test_config_round_trip_and_bad_arguments():
    memory = CodeMemory(size=16, bits=8, num_classes=3, name="bank")
    again = run_serialization_test(memory)
    assert (again.size, again.bits, again.num_classes) == (16, 8, 3)
    with pytest.raises(ValueError, match="size"):
        CodeMemory(size=0, bits=8, num_classes=3)
    with pytest.raises(ValueError, match="multiple of 8"):
        CodeMemory(size=4, bits=12, num_classes=3)

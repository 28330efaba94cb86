import keras
import numpy as np
import pytest
from helpers import run_serialization_test

from keras_mlh.layers import LinearWarmup


def test_rises_by_one_step_per_training_call_and_stays_at_one():
    warmup = LinearWarmup(steps=3)
    values = [float(warmup(training=True)) for _ in range(5)]
    np.testing.assert_allclose(values, [0, 1 / 3, 2 / 3, 1, 1], rtol=1e-6)
    # The count stops at `steps`: it cannot grow without bound.
    assert float(keras.ops.convert_to_numpy(warmup.step.value)) == 3


def test_inference_calls_do_not_count():
    warmup = LinearWarmup(steps=2)
    assert float(warmup(training=False)) == 0
    assert float(warmup()) == 0
    assert float(warmup(training=True)) == 0
    assert float(warmup(training=False)) == 0.5


def test_the_step_is_non_trainable_state():
    warmup = LinearWarmup(steps=2)
    warmup.build()
    assert warmup.trainable_weights == []
    assert [v.name for v in warmup.non_trainable_weights] == ["step"]


def test_serializes_its_steps():
    again = run_serialization_test(LinearWarmup(steps=7, name="w"))
    assert again.steps == 7


def test_counts_past_float16_precision_under_mixed_precision():
    # A float16 count would stop at 2048 (2048 + 1 rounds back to 2048).
    warmup = LinearWarmup(steps=5000, dtype="mixed_float16")
    warmup.build()
    warmup.step.assign(2048)
    value = warmup(training=True)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    assert float(value) == pytest.approx(2048 / 5000)
    assert int(keras.ops.convert_to_numpy(warmup.step.value)) == 2049


def test_accepts_numpy_integers():
    assert LinearWarmup(steps=np.int64(3)).steps == 3


@pytest.mark.parametrize("steps", [0, -1, 2.5, True, "10", None, 2**31])
def test_steps_must_be_a_positive_integer(steps):
    with pytest.raises(ValueError, match="steps"):
        LinearWarmup(steps=steps)

import keras
from keras import ops

from keras_mlh_runtime.errors import check_int_in_range

# The count is an int32 that stops at `steps`.
MAX_STEPS = 2**31 - 1


@keras.saving.register_keras_serializable(package="keras_mlh")
class LinearWarmup(keras.layers.Layer):
    """A factor that rises linearly from 0 to 1 over the first training steps.

    MLH scales its mutual loss by it (`mutual_warmup_steps`), so each branch
    can find its own codes before the branches start teaching each other.
    The step count is non-trainable state written in `call(training=True)`,
    like batch normalization's moving statistics, so it advances on every
    backend (JAX's stateless step included), is saved in `.keras` files and
    carries over when training resumes.

    Args:
        steps: training steps to reach 1, from 1 to 2**31 - 1.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        training: count this call as a training step when `True`.

    Returns:
        A float32 scalar, `min(1, steps taken before this call / steps)`.

    Example:
    >>> warmup = LinearWarmup(steps=4)
    >>> [float(warmup(training=True)) for _ in range(6)]
    [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    >>> float(warmup(training=False))  # evaluation does not count
    1.0
    """

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = check_int_in_range("steps", steps, 1, MAX_STEPS)

    def build(self, input_shape=None):
        # An integer count (a float16 one would stop at 2048 under mixed
        # precision) that stops at `steps`. The replicas of tf.distribute
        # count the same steps.
        self.step = self.add_weight(
            name="step",
            shape=(),
            initializer="zeros",
            dtype="int32",
            trainable=False,
            aggregation="only_first_replica",
        )
        self.built = True

    def call(self, training=None):
        # A copy: torch assigns in place, and this is the count before the write.
        step = ops.copy(self.step.value)
        if training:
            self.step.assign(ops.minimum(step + 1, self.steps))
        return ops.cast(step, "float32") / float(self.steps)

    def compute_output_spec(self, training=None):
        return keras.KerasTensor((), dtype="float32")

    def get_config(self):
        config = super().get_config()
        config.update({"steps": self.steps})
        return config

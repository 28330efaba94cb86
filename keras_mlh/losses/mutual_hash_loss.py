import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mlh")
class MutualHashLoss(keras.losses.Loss):
    """Cosine mutual loss: `1 - cos(y_pred, y_true)` per sample (MLH detaches
    `y_true` and calls it both ways between the branches).

    Args:
        epsilon: added to the norms to keep the cosine finite at zero.

    Example:
    >>> u = keras.ops.ones((2, 8))
    >>> float(MutualHashLoss()(u, u)) < 1e-6
    True
    """

    def __init__(self, epsilon=1e-7, name="mutual_hash_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        dot = ops.sum(y_true * y_pred, axis=-1)
        norms = ops.norm(y_true, axis=-1) * ops.norm(y_pred, axis=-1)
        return 1.0 - dot / (norms + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}

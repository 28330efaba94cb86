import keras
import numpy as np
from keras import ops

from keras_mlh.centers import check_centers

NORMALIZATIONS = ("sample", "sample_class")


class HashCenterLoss(keras.losses.Loss):
    """Base of the center losses: numpy ±1 `centers` (no captured constant),
    `quantization_weight * mean((|u| - 1)^2)` and the config; subclasses
    write the per-sample `center_term(y_true, y_pred)`."""

    def __init__(self, centers, quantization_weight, epsilon, **kwargs):
        super().__init__(**kwargs)
        self.centers = check_centers(centers)
        self.quantization_weight = float(quantization_weight)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        loss = self.center_term(y_true, y_pred)
        if self.quantization_weight:
            quantization = ops.mean(ops.square(ops.abs(y_pred) - 1.0), axis=-1)
            loss = loss + self.quantization_weight * quantization
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "centers": self.centers.astype(int).tolist(),
            "quantization_weight": self.quantization_weight,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="keras_mlh")
class CenterHashLoss(HashCenterLoss):
    """Center loss of MDSH (as MLH uses it), plus the quantization term.

    Per sample `-sum_i [y_i log P_i + (1 - y_i) log(1 - P_i)]`, with
    `P_i = softmax_i(scale * cos(u, h_i))` over the hash centers `h_i`.

    Args:
        centers: `(num_classes, bits)` ±1 hash centers.
        scale: logit scale; `None` is `sqrt(bits)` as in MDSH/MLH.
        normalization: `"sample"` sums over classes (MLH's `1/N`),
            `"sample_class"` averages over them too (MDSH's code, `1/(N c)`).
        quantization_weight: weight of `mean((|u| - 1)^2)`; MDSH uses 1e-4.
        epsilon: floor of `1 - P` inside the log.
        name, **kwargs: standard `keras.losses.Loss` arguments.

    Call arguments:
        y_true: multi-hot `(batch, num_classes)`; y_pred: codes `(batch, bits)`.

    Example:
    >>> from keras_mlh.centers import hash_centers
    >>> loss = CenterHashLoss(hash_centers(10, 16).centers)
    >>> y = keras.ops.one_hot(keras.ops.array([0, 3]), 10)
    >>> float(loss(y, keras.ops.ones((2, 16)))) > 0
    True
    """

    def __init__(
        self,
        centers,
        scale=None,
        normalization="sample",
        quantization_weight=1e-4,
        epsilon=1e-7,
        name="center_hash_loss",
        **kwargs,
    ):
        super().__init__(centers, quantization_weight, epsilon, name=name, **kwargs)
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        bits = self.centers.shape[1]
        self.scale = float(np.sqrt(bits)) if scale is None else float(scale)
        self.normalization = normalization

    def center_term(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        centers = ops.convert_to_tensor(self.centers, dtype=y_pred.dtype)
        centers = centers / ops.sqrt(float(self.centers.shape[1]))
        codes = y_pred / (ops.norm(y_pred, axis=-1, keepdims=True) + self.epsilon)
        logits = self.scale * ops.matmul(codes, ops.transpose(centers))
        log_p = ops.log_softmax(logits, axis=-1)
        log_not_p = ops.log(ops.maximum(1.0 - ops.exp(log_p), self.epsilon))
        loss = -ops.sum(y_true * log_p + (1.0 - y_true) * log_not_p, axis=-1)
        if self.normalization == "sample_class":
            loss = loss / float(self.centers.shape[0])
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "scale": self.scale,
            "normalization": self.normalization,
        }

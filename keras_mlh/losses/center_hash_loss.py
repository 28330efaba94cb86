"""The center losses: MDSH's `CenterHashLoss` and `CSQHashLoss`."""

import keras
import numpy as np
from keras import ops

NORMALIZATIONS = ("sample", "sample_class")


class HashCenterLoss(keras.losses.Loss):
    """Base of the center losses: `center_term` + quantization, numpy centers."""

    def __init__(self, centers, quantization_weight, epsilon, **kwargs):
        super().__init__(**kwargs)
        self.centers = np.asarray(centers, dtype="float32")
        if self.centers.ndim != 2 or not np.all(np.abs(self.centers) == 1):
            raise ValueError(
                "`centers` must be a (num_classes, bits) array of ±1 values, e.g. "
                f"from `keras_mlh.hash_centers`. Received: shape={self.centers.shape}"
            )
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
    """MDSH's center loss (as MLH uses it), plus the quantization term.

    Per sample `-sum_i [y_i log P_i + (1 - y_i) log(1 - P_i)]`, with
    `P_i = softmax_i(scale * cos(u, h_i))` over the hash centers `h_i`;
    `y_true` is multi-hot `(batch, num_classes)`, `y_pred` codes `(batch, bits)`.

    Args:
        centers: `(num_classes, bits)` ±1 hash centers.
        scale: logit scale; `None` is `sqrt(bits)` as in MDSH/MLH.
        normalization: `"sample"` sums over classes (MLH's `1/N`),
            `"sample_class"` averages over them too (MDSH's code, `1/(N c)`).
        quantization_weight: weight of `mean((|u| - 1)^2)`; MDSH uses 1e-4.

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
        # Converted inside call so no constant tensor is captured at build time.
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
        config = super().get_config()
        return {**config, "scale": self.scale, "normalization": self.normalization}


@keras.saving.register_keras_serializable(package="keras_mlh")
class CSQHashLoss(HashCenterLoss):
    """Central Similarity Quantization's loss (Yuan et al., CVPR 2020).

    As CSQ's code: the mean over bits of the cross-entropy between `(u + 1)/2`
    and `(c + 1)/2`, `c` the image's center (`sign(sum of its labels'
    centers)`, ties from `tie_center`), plus the quantization term.

    Args:
        centers: `(num_classes, bits)` ±1 hash centers.
        quantization_weight: CSQ's `lambda`; the reference code uses 1e-4.
        tie_center: `(bits,)` ±1 for tied bits; `None` draws it from `seed`.

    Example:
    >>> from keras_mlh.centers import hash_centers
    >>> centers = hash_centers(10, 16).centers
    >>> y = keras.ops.one_hot(keras.ops.array([0, 3]), 10)
    >>> near = 0.9 * centers[[0, 3]].astype("float32")
    >>> float(CSQHashLoss(centers)(y, near)) < float(CSQHashLoss(centers)(y, -near))
    True
    """

    def __init__(
        self,
        centers,
        quantization_weight=1e-4,
        tie_center=None,
        seed=0,
        epsilon=1e-7,
        name="csq_hash_loss",
        **kwargs,
    ):
        super().__init__(centers, quantization_weight, epsilon, name=name, **kwargs)
        bits = self.centers.shape[1]
        if tie_center is None:
            tie_center = np.random.default_rng(seed).choice([-1.0, 1.0], size=bits)
        tie_center = np.asarray(tie_center, dtype="float32")
        if tie_center.shape != (bits,) or not np.all(np.abs(tie_center) == 1):
            raise ValueError(
                f"`tie_center` must be {bits} values of ±1, one per bit. "
                f"Received: shape={tie_center.shape}"
            )
        self.tie_center = tie_center
        self.seed = int(seed)

    def targets(self, y_true, dtype="float32"):
        """Each image's hash center, `(batch, bits)` of ±1 (CSQ's rule)."""
        centers = ops.convert_to_tensor(self.centers, dtype=dtype)
        total = ops.matmul(ops.cast(y_true, dtype), centers)
        tie = ops.convert_to_tensor(self.tie_center, dtype=dtype)
        return ops.where(total == 0, tie, ops.sign(total))

    def center_term(self, y_true, y_pred):
        centers = self.targets(y_true, y_pred.dtype)
        # BCE((u + 1) / 2, (c + 1) / 2) with c = ±1 is -log((1 + c u) / 2).
        agreement = ops.maximum((1.0 + centers * y_pred) / 2.0, self.epsilon)
        return -ops.mean(ops.log(agreement), axis=-1)

    def get_config(self):
        tie_center = self.tie_center.astype(int).tolist()
        return {**super().get_config(), "tie_center": tie_center, "seed": self.seed}

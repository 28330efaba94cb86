import keras
import numpy as np
from keras import ops

from keras_mlh.losses.center_hash_loss import HashCenterLoss


@keras.saving.register_keras_serializable(package="keras_mlh")
class CSQHashLoss(HashCenterLoss):
    """Central Similarity Quantization's loss (Yuan et al., CVPR 2020).

    As CSQ's reference code: the mean over bits of the binary cross-entropy
    between `(u + 1) / 2` and `(c + 1) / 2`, `c` the image's center
    (`sign(sum of its labels' centers)`, ties from `tie_center`), plus the
    quantization term.

    Args:
        centers: `(num_classes, bits)` ±1 hash centers.
        quantization_weight: CSQ's `lambda`; the reference code uses 1e-4.
        tie_center: `(bits,)` ±1 for tied bits; `None` draws it from `seed`.
        seed: seed of the tie center when it is drawn.
        epsilon: floor of the probabilities inside the logs.
        name, **kwargs: standard `keras.losses.Loss` arguments.

    Call arguments:
        y_true: multi-hot `(batch, num_classes)`; y_pred: codes in (-1, 1).

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
        return {
            **super().get_config(),
            "tie_center": self.tie_center.astype(int).tolist(),
            "seed": self.seed,
        }

import keras
import numpy as np
from keras import ops

NORMALIZATIONS = ("sample", "sample_class")
MULTI_LABEL_TARGETS = ("labels", "centroid")


@keras.saving.register_keras_serializable(package="keras_mlh")
class CenterHashLoss(keras.losses.Loss):
    """Center loss of center-based hashing (MDSH form, as MLH uses it).

    With hash centers `h_i` and continuous codes `u`,
    `P_i = softmax_i(scale * cos(u, h_i))` and the per-sample loss is
    `-sum_i [y_i log P_i + (1 - y_i) log(1 - P_i)]` for multi-hot targets `y`
    (one-hot for single-label data), plus
    `quantization_weight * mean((|u| - 1)^2)`.

    An image with several labels has, by that formula, several positive
    classes competing in one softmax (`multi_label_target="labels"`). With
    `multi_label_target="centroid"` it has one target instead, CSQ's rule
    for multi-label data: the ±1 code `sign(sum of its labels' centers)`
    (bits where they tie are left out), contrasted with the centers of the
    classes it does not show. On single-label data both are the same loss.

    Args:
        centers: array `(num_classes, bits)` of ±1 hash centers.
        scale: logit scale; `None` means `sqrt(bits)` as in MDSH/MLH.
        normalization: `"sample"` sums over classes (the `1/N` of the MLH
            formula) and `"sample_class"` averages over classes too (MDSH's
            code, `1/(N c)`), which makes the term `c` times smaller.
        quantization_weight: weight of `mean((|u| - 1)^2)`; MDSH uses 1e-4.
        multi_label_target: `"labels"` (the formula above) or `"centroid"`,
            what an image with several labels is pulled to, see above.
        epsilon: floor of `1 - P` inside the log.
        name, reduction, dtype: standard `keras.losses.Loss` arguments.

    Call arguments:
        y_true: multi-hot float targets `(batch, num_classes)`.
        y_pred: continuous codes `(batch, bits)`.

    Returns:
        The reduced loss (a scalar with the default reduction).

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
        multi_label_target="labels",
        epsilon=1e-7,
        name="center_hash_loss",
        reduction="sum_over_batch_size",
        dtype=None,
    ):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        centers = np.asarray(centers, dtype="float32")
        if centers.ndim != 2 or not np.all(np.abs(centers) == 1):
            raise ValueError(
                "`centers` must be a (num_classes, bits) array of ±1 values, e.g. "
                f"from `keras_mlh.hash_centers`. Received: shape={centers.shape}"
            )
        if normalization not in NORMALIZATIONS:
            raise ValueError(
                f"`normalization` must be one of {NORMALIZATIONS}. "
                f"Received: normalization={normalization!r}"
            )
        if multi_label_target not in MULTI_LABEL_TARGETS:
            raise ValueError(
                f"`multi_label_target` must be one of {MULTI_LABEL_TARGETS}. "
                f"Received: multi_label_target={multi_label_target!r}"
            )
        self.centers = centers
        self.multi_label_target = multi_label_target
        self.scale = float(np.sqrt(centers.shape[1])) if scale is None else float(scale)
        self.normalization = normalization
        self.quantization_weight = float(quantization_weight)
        self.epsilon = float(epsilon)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, y_pred.dtype)
        # Converted inside call so no constant tensor is captured at build time.
        centers = ops.convert_to_tensor(self.centers, dtype=y_pred.dtype)
        centers = centers / ops.sqrt(float(self.centers.shape[1]))
        codes = y_pred / (ops.norm(y_pred, axis=-1, keepdims=True) + self.epsilon)
        logits = self.scale * ops.matmul(codes, ops.transpose(centers))
        if self.multi_label_target == "centroid":
            loss = self._centroid_loss(y_true, codes, logits, centers)
        else:
            log_p = ops.log_softmax(logits, axis=-1)
            log_not_p = self._log_not(log_p)
            loss = -ops.sum(y_true * log_p + (1.0 - y_true) * log_not_p, axis=-1)
        if self.normalization == "sample_class":
            loss = loss / float(self.centers.shape[0])
        if self.quantization_weight:
            quantization = ops.mean(ops.square(ops.abs(y_pred) - 1.0), axis=-1)
            loss = loss + self.quantization_weight * quantization
        return loss

    def _log_not(self, log_p):
        return ops.log(ops.maximum(1.0 - ops.exp(log_p), self.epsilon))

    def _centroid_loss(self, y_true, codes, logits, centers):
        # One positive logit per image, towards its labels' centroid code;
        # the classes it shows leave the softmax (their logits go to -inf).
        centroid = ops.sign(ops.matmul(y_true, centers))
        centroid = centroid / (
            ops.norm(centroid, axis=-1, keepdims=True) + self.epsilon
        )
        positive = self.scale * ops.sum(codes * centroid, axis=-1, keepdims=True)
        negatives = ops.where(y_true > 0, -1e9, logits)
        log_p = ops.log_softmax(
            ops.concatenate([positive, negatives], axis=-1), axis=-1
        )
        log_not_p = self._log_not(log_p[:, 1:])
        return -(log_p[:, 0] + ops.sum((1.0 - y_true) * log_not_p, axis=-1))

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "centers": self.centers.astype(int).tolist(),
                "scale": self.scale,
                "normalization": self.normalization,
                "quantization_weight": self.quantization_weight,
                "multi_label_target": self.multi_label_target,
                "epsilon": self.epsilon,
            }
        )
        return config

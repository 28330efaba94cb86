import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mlh")
class PairwiseHashLoss(keras.losses.Loss):
    """Pairwise similarity likelihood loss of DPSH, with a quantization term.

    With `S_jk = 1[y_j . y_k > 0]` and `Theta_jk = theta_scale * u_j . u_k`,
    the per-sample loss is the mean over references `k` of
    `softplus(Theta_jk) - S_jk * Theta_jk` plus
    `quantization_weight * mean((u_j - sign(u_j))^2)`. The references are
    the batch, or pass `y_true={"labels", "reference_labels"}` and
    `y_pred={"codes", "reference_codes"}` (e.g. gathered over replicas).

    Args:
        theta_scale: scale of the inner product; DPSH uses 1/2.
        quantization_weight: weight of the quantization term.
        name, **kwargs: standard `keras.losses.Loss` arguments.

    Call arguments:
        y_true: multi-hot labels, y_pred: codes `(batch, bits)`, or the dicts.

    Example:
    >>> loss = PairwiseHashLoss()
    >>> y = keras.ops.one_hot(keras.ops.array([0, 0, 1]), 2)
    >>> float(loss(y, keras.ops.tanh(keras.random.normal((3, 16), seed=1)))) > 0
    True
    """

    def __init__(
        self,
        theta_scale=0.5,
        quantization_weight=0.1,
        name="pairwise_hash_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if theta_scale <= 0:
            raise ValueError(f"`theta_scale` must be > 0. Received: {theta_scale}")
        self.theta_scale = float(theta_scale)
        self.quantization_weight = float(quantization_weight)

    def call(self, y_true, y_pred):
        codes, reference_codes = y_pred, y_pred  # the batch is its own reference
        labels, reference_labels = y_true, y_true
        if isinstance(y_pred, dict):
            codes, reference_codes = y_pred["codes"], y_pred["reference_codes"]
            labels, reference_labels = y_true["labels"], y_true["reference_labels"]
        labels = ops.cast(labels, codes.dtype)
        reference_labels = ops.cast(reference_labels, codes.dtype)
        similar = ops.cast(
            ops.matmul(labels, ops.transpose(reference_labels)) > 0, codes.dtype
        )
        theta = self.theta_scale * ops.matmul(codes, ops.transpose(reference_codes))
        likelihood = ops.softplus(theta) - similar * theta
        loss = ops.mean(likelihood, axis=-1)
        if self.quantization_weight:
            quantization = ops.mean(ops.square(codes - ops.sign(codes)), axis=-1)
            loss = loss + self.quantization_weight * quantization
        return loss

    def get_config(self):
        return {
            **super().get_config(),
            "theta_scale": self.theta_scale,
            "quantization_weight": self.quantization_weight,
        }

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_mlh")
class PairwiseHashLoss(keras.losses.Loss):
    """DPSH's pairwise similarity likelihood loss, with a quantization term.

    Per sample, the mean over references `k` of `softplus(T_jk) - S_jk T_jk`
    (`S_jk = 1[y_j . y_k > 0]`, `T_jk = theta_scale * u_j . u_k`) plus
    `quantization_weight * mean((u_j - sign(u_j))^2)`. The references are the
    batch, or `y_true={"labels", "reference_labels"}` and
    `y_pred={"codes", "reference_codes"}` (e.g. gathered over replicas).

    Args:
        theta_scale: scale of the inner product; DPSH uses 1/2.

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
        if not isinstance(y_pred, dict):  # the batch is its own reference
            y_true = {"labels": y_true, "reference_labels": y_true}
            y_pred = {"codes": y_pred, "reference_codes": y_pred}
        codes = y_pred["codes"]
        labels = ops.cast(y_true["labels"], codes.dtype)
        reference_labels = ops.cast(y_true["reference_labels"], codes.dtype)
        similar = ops.cast(
            ops.matmul(labels, ops.transpose(reference_labels)) > 0, codes.dtype
        )
        reference_codes = ops.transpose(y_pred["reference_codes"])
        theta = self.theta_scale * ops.matmul(codes, reference_codes)
        loss = ops.mean(ops.softplus(theta) - similar * theta, axis=-1)
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

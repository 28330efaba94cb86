import keras
from keras import ops

from keras_mlh.layers.hash_layer import _BranchCodes
from keras_mlh_runtime.errors import check_positive_int


@keras.saving.register_keras_serializable(package="keras_mlh")
class MixtureOfHashExperts(_BranchCodes):
    """Mixture of hash experts (MoH) shared by several hash branches.

    Each branch's code is `tanh(BN(sum_e gate_e(x) * expert_e(x)))` over
    `num_experts` shared linear experts, with its own softmax gate; with
    `top_k < num_experts` a gate keeps its `top_k` largest logits (and ties).

    Args:
        num_experts: number of shared hash experts.
        top_k: experts kept per gate; `None` means all (dense gating).
        bits, num_branches, batch_norm, kernel_initializer, **kwargs: as in
            `HashLayer` (one gate per branch).

    Call arguments:
        features: `(batch, features)`; training: batch norm's mode.

    Returns:
        `(codes, gates)`: codes in (-1, 1) `(batch, num_branches, bits)` and
        gate weights `(batch, num_branches, num_experts)` (rows sum to 1).

    Example:
    >>> moh = MixtureOfHashExperts(bits=32, num_experts=4, num_branches=2)
    >>> codes, gates = moh(keras.ops.ones((8, 64)))
    >>> tuple(codes.shape), tuple(gates.shape)
    ((8, 2, 32), (8, 2, 4))
    """

    def __init__(
        self,
        bits,
        num_experts=4,
        num_branches=2,
        top_k=None,
        batch_norm=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(bits, num_branches, batch_norm, kernel_initializer, **kwargs)
        num_experts = check_positive_int("num_experts", num_experts)
        top_k = check_positive_int("top_k", top_k, allow_none=True)
        if top_k is not None and top_k > num_experts:
            raise ValueError(
                "`top_k` cannot exceed `num_experts`; use top_k=None for "
                f"dense gating. Received: top_k={top_k}, num_experts={num_experts}"
            )
        self.num_experts = num_experts
        self.top_k = top_k

    def build(self, input_shape):
        features = input_shape[-1]
        self.expert_kernel, self.expert_bias = self._add_linear(
            "expert_", features, self.num_experts, self.bits
        )
        self.gate_kernel, self.gate_bias = self._add_linear(
            "gate_", features, self.num_branches, self.num_experts
        )
        self._build_tail()

    def call(self, features, training=None):
        experts = ops.einsum("nd,deb->neb", features, self.expert_kernel)
        experts = experts + self.expert_bias
        logits = ops.einsum("nd,dre->nre", features, self.gate_kernel) + self.gate_bias
        if self.top_k is not None and self.top_k < self.num_experts:
            threshold = ops.top_k(logits, self.top_k, sorted=True)[0][..., -1:]
            logits = ops.where(logits >= threshold, logits, ops.full_like(logits, -1e9))
        gates = ops.softmax(logits, axis=-1)
        mixed = ops.einsum("nre,neb->nrb", gates, experts)
        return self._codes(mixed, training), gates

    def compute_output_shape(self, input_shape):
        return (
            (input_shape[0], self.num_branches, self.bits),
            (input_shape[0], self.num_branches, self.num_experts),
        )

    def get_config(self):
        config = super().get_config()
        return {**config, "num_experts": self.num_experts, "top_k": self.top_k}

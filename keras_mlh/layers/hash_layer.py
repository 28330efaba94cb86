"""The hash heads: `HashLayer` and the `MixtureOfHashExperts`."""

import keras
from keras import ops

from keras_mlh_runtime.codes import validate_bits
from keras_mlh_runtime.errors import check_positive_int


@keras.saving.register_keras_serializable(package="keras_mlh")
class HashLayer(keras.layers.Layer):
    """Independent hash layers, one per branch: Dense -> BatchNorm -> tanh.

    The hash head of CSQ/MDSH/DPSH and of the `mlh_no_moh` ablation. Batch
    norm (CSQ/MDSH's recipe, momentum 0.9) keeps tanh's inputs responsive.

    Args:
        bits: code length, a positive multiple of 8.
        batch_norm: batch normalization before tanh.

    Returns:
        Codes in (-1, 1), `(batch, num_branches, bits)`.

    Example:
    >>> layer = HashLayer(bits=16, num_branches=2)
    >>> tuple(layer(keras.ops.ones((4, 32))).shape)
    (4, 2, 16)
    """

    def __init__(
        self,
        bits,
        num_branches=1,
        batch_norm=True,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.bits = validate_bits(bits)
        self.num_branches = check_positive_int("num_branches", num_branches)
        self.batch_norm = bool(batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        for prefix, (units, width) in self._linear_maps().items():
            kernel = self.add_weight(
                name=f"{prefix}kernel",
                shape=(input_shape[-1], units, width),
                initializer=self.kernel_initializer,
            )
            bias = self.add_weight(
                name=f"{prefix}bias", shape=(units, width), initializer="zeros"
            )
            setattr(self, f"{prefix}kernel", kernel)
            setattr(self, f"{prefix}bias", bias)
        if self.batch_norm:
            self.normalization = keras.layers.BatchNormalization(
                momentum=0.9, dtype=self.dtype_policy, name="normalization"
            )
            self.normalization.build((None, self.num_branches * self.bits))

    def _linear_maps(self):
        """Weight-name prefix -> `(units, width)` of each stack of linear maps."""
        return {"": (self.num_branches, self.bits)}

    def call(self, features, training=None):
        mixed = ops.einsum("nd,drb->nrb", features, self.kernel) + self.bias
        return self._codes(mixed, training)

    def _codes(self, mixed, training):
        # One batch norm over the flattened (batch, branches * bits).
        if self.batch_norm:
            flat = ops.reshape(mixed, (-1, self.num_branches * self.bits))
            flat = self.normalization(flat, training=training)
            mixed = ops.reshape(flat, (-1, self.num_branches, self.bits))
        return ops.tanh(mixed)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_branches, self.bits)

    def get_config(self):
        return {
            **super().get_config(),
            "bits": self.bits,
            "num_branches": self.num_branches,
            "batch_norm": self.batch_norm,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }


@keras.saving.register_keras_serializable(package="keras_mlh")
class MixtureOfHashExperts(HashLayer):
    """Mixture of hash experts (MoH) shared by several hash branches.

    Each branch's code is `tanh(BN(sum_e gate_e(x) * expert_e(x)))` over
    `num_experts` shared linear experts, with its own softmax gate; with
    `top_k < num_experts` a gate keeps its `top_k` largest logits (and ties).

    Args:
        num_experts: number of shared hash experts.
        top_k: experts kept per gate; `None` means all (dense gating).

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
        self.num_experts = check_positive_int("num_experts", num_experts)
        self.top_k = check_positive_int("top_k", top_k, allow_none=True)
        if self.top_k is not None and self.top_k > self.num_experts:
            raise ValueError(
                "`top_k` cannot exceed `num_experts`; use top_k=None for dense "
                f"gating. Received: top_k={top_k}, num_experts={num_experts}"
            )

    def _linear_maps(self):
        return {
            "expert_": (self.num_experts, self.bits),
            "gate_": (self.num_branches, self.num_experts),
        }

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
            super().compute_output_shape(input_shape),
            (input_shape[0], self.num_branches, self.num_experts),
        )

    def get_config(self):
        config = super().get_config()
        return {**config, "num_experts": self.num_experts, "top_k": self.top_k}

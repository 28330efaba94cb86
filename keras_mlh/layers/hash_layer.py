import keras
from keras import ops

from keras_mlh_runtime.codes import validate_bits
from keras_mlh_runtime.errors import check_positive_int


class _BranchCodes(keras.layers.Layer):
    """Common tail of the hash heads: per-branch batch norm, then tanh.

    Batch norm (CSQ/MDSH's recipe) keeps tanh's inputs in its responsive range;
    momentum 0.9 lets the inference statistics follow within a few hundred steps.
    """

    def __init__(self, bits, num_branches, batch_norm, kernel_initializer, **kwargs):
        super().__init__(**kwargs)
        self.bits = validate_bits(bits)
        self.num_branches = check_positive_int("num_branches", num_branches)
        self.batch_norm = bool(batch_norm)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def _add_linear(self, prefix, features, units, width):
        """Kernel and bias of `units` linear maps of `features` to `width`."""
        kernel = self.add_weight(
            name=f"{prefix}kernel",
            shape=(features, units, width),
            initializer=self.kernel_initializer,
        )
        bias = self.add_weight(
            name=f"{prefix}bias", shape=(units, width), initializer="zeros"
        )
        return kernel, bias

    def _build_tail(self):
        if self.batch_norm:
            self.normalization = keras.layers.BatchNormalization(
                momentum=0.9, dtype=self.dtype_policy, name="normalization"
            )
            self.normalization.build((None, self.num_branches * self.bits))

    def _codes(self, mixed, training):
        # One batch norm over the flattened (batch, branches * bits).
        if self.batch_norm:
            flat = ops.reshape(mixed, (-1, self.num_branches * self.bits))
            flat = self.normalization(flat, training=training)
            mixed = ops.reshape(flat, (-1, self.num_branches, self.bits))
        return ops.tanh(mixed)

    def get_config(self):
        initializer = keras.initializers.serialize(self.kernel_initializer)
        return {
            **super().get_config(),
            "bits": self.bits,
            "num_branches": self.num_branches,
            "batch_norm": self.batch_norm,
            "kernel_initializer": initializer,
        }


@keras.saving.register_keras_serializable(package="keras_mlh")
class HashLayer(_BranchCodes):
    """Independent hash layers, one per branch: Dense -> BatchNorm -> tanh
    (the hash head of CSQ/MDSH/DPSH and of the `mlh_no_moh` ablation).

    Args:
        bits: code length, a positive multiple of 8.
        num_branches: number of independent branches.
        batch_norm: apply batch normalization before tanh.
        kernel_initializer: initializer of the projections.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        features: `(batch, features)`; training: batch norm's mode.

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
        super().__init__(bits, num_branches, batch_norm, kernel_initializer, **kwargs)

    def build(self, input_shape):
        self.kernel, self.bias = self._add_linear(
            "", input_shape[-1], self.num_branches, self.bits
        )
        self._build_tail()

    def call(self, features, training=None):
        mixed = ops.einsum("nd,drb->nrb", features, self.kernel) + self.bias
        return self._codes(mixed, training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_branches, self.bits)

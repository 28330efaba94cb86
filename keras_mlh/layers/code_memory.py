import keras
from keras import ops

from keras_mlh_runtime.codes import validate_bits
from keras_mlh_runtime.errors import check_positive_int


@keras.saving.register_keras_serializable(package="keras_mlh")
class CodeMemory(keras.layers.Layer):
    """A queue of the latest continuous codes and labels (DPSH's code bank).

    DPSH compares each batch with the codes of every training image; a
    MoCo-style queue of the last `size` codes and labels gives the same
    without per-sample indices. The memory is a layer with non-trainable
    state written in `call(training=True)`, like batch normalization's
    moving statistics, so its updates are kept on every backend (the JAX
    trainer keeps state written inside a layer call and drops writes made
    elsewhere in the loss). Under `tf.distribute` the model passes the
    codes gathered over the replicas, so every replica writes the whole
    global batch and the first replica's copy is kept.

    Args:
        size: number of codes kept.
        bits: code length.
        num_classes: width of the multi-hot labels.
        **kwargs: standard `keras.layers.Layer` arguments.

    Call arguments:
        codes: `(batch, bits)` codes to store (they are detached).
        labels: multi-hot `(batch, num_classes)` labels to store.
        training: store the batch only when `True`.

    Returns:
        The contents before this call, a dict: `"codes"` `(size, bits)`,
        `"labels"` `(size, num_classes)` and `"weights"` `(size,)`, 1 for
        filled slots and 0 for empty ones.

    Example:
    >>> memory = CodeMemory(size=4, bits=8, num_classes=2)
    >>> codes = keras.ops.ones((3, 8))
    >>> labels = keras.ops.one_hot(keras.ops.array([0, 1, 1]), 2)
    >>> tuple(memory(codes, labels, training=True)["weights"].shape)
    (4,)
    >>> float(keras.ops.sum(memory.filled))
    3.0
    """

    def __init__(self, size, bits, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.size = check_positive_int("size", size)
        self.bits = validate_bits(bits)
        self.num_classes = check_positive_int("num_classes", num_classes)

    def build(self, codes_shape=None, labels_shape=None):
        def state(name, shape, dtype="float32"):
            return self.add_weight(
                name=name,
                shape=shape,
                initializer="zeros",
                dtype=dtype,
                trainable=False,
                aggregation="only_first_replica",
            )

        self.codes = state("codes", (self.size, self.bits))
        self.labels = state("labels", (self.size, self.num_classes))
        self.filled = state("filled", (self.size,))
        self.position = state("position", (), "int32")
        self.built = True

    def load_legacy_state(self, codes, labels, filled, position):
        """Takes the state a model kept as its own variables before this layer.

        `.keras` files of keras-mlh before `CodeMemory` stored the memory as
        four variables of `MLH` itself (`memory_codes`, `memory_labels`,
        `memory_filled`, `memory_position`, in that order); `MLH` hands them
        here. Such a file has no `code_memory` entry, so the next
        `load_own_variables` of the same load gets an empty store: it is
        skipped.

        Args:
            codes, labels, filled, position: the old variables' values.
        """
        if not self.built:
            self.build()
        for variable, value in zip(
            (self.codes, self.labels, self.filled, self.position),
            (codes, labels, filled, position),
            strict=True,
        ):
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"The saved code memory holds {variable.name} of shape "
                    f"{tuple(value.shape)}, but pairwise_memory_size={self.size}, "
                    f"bits={self.bits}, num_classes={self.num_classes} make "
                    f"{tuple(variable.shape)}: the file's config and weights "
                    "disagree. Re-save the model from the code that trained it."
                )
            variable.assign(value)
        self._loaded_legacy_state = True

    def load_own_variables(self, store):
        if not list(store.keys()) and getattr(self, "_loaded_legacy_state", False):
            self._loaded_legacy_state = False
            return
        super().load_own_variables(store)

    def call(self, codes, labels, training=None):
        # Copies: torch assigns in place, and these are the contents *before*
        # the write below.
        contents = {
            "codes": ops.copy(self.codes.value),
            "labels": ops.copy(self.labels.value),
            "weights": ops.copy(self.filled.value),
        }
        if training:
            self._write(ops.stop_gradient(codes), ops.cast(labels, "float32"))
        return contents

    def _write(self, codes, labels):
        codes, labels = codes[-self.size :], labels[-self.size :]
        count = ops.shape(codes)[0]
        start = ops.convert_to_tensor(self.position.value)
        index = (start + ops.arange(count, dtype="int32")) % self.size
        index = ops.expand_dims(index, -1)
        self.codes.assign(ops.scatter_update(self.codes.value, index, codes))
        self.labels.assign(ops.scatter_update(self.labels.value, index, labels))
        self.filled.assign(
            ops.scatter_update(self.filled.value, index, ops.ones((count,)))
        )
        self.position.assign((start + count) % self.size)

    def compute_output_spec(self, codes, labels, training=None):
        spec = keras.KerasTensor
        return {
            "codes": spec((self.size, self.bits)),
            "labels": spec((self.size, self.num_classes)),
            "weights": spec((self.size,)),
        }

    def get_config(self):
        config = super().get_config()
        config.update(
            {"size": self.size, "bits": self.bits, "num_classes": self.num_classes}
        )
        return config

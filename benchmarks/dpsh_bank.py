"""DPSH's bank of training codes for the pairwise term: an experiment, not an option.

DeepHash-pytorch's DPSH keeps the latest code of every training image and takes
the likelihood between the batch and that whole bank, where `keras_mlh.MLH`
takes it inside the batch. `BankMLH` adds a first-in-first-out bank of the last
`pairwise_bank` codes and labels (the size of the training set gives DPSH's)
to the pairwise references; slots not yet written hold zero codes and no label,
so they add no gradient. `benchmarks/protocols.py --set pairwise_bank=N` runs
it (TensorFlow, one device: the bank is written with `assign` inside the step).
"""

import keras
from keras import ops

import keras_mlh
from keras_mlh.losses.mlh_objective import multi_hot


class BankMLH(keras_mlh.MLH):
    """`keras_mlh.MLH` whose pairwise term also sees the last `pairwise_bank` codes.

    Args:
        pairwise_bank: how many of the latest training codes the bank keeps.
        **kwargs: `keras_mlh.MLH`'s arguments.
    """

    def __init__(self, pairwise_bank, **kwargs):
        super().__init__(**kwargs)
        self.pairwise_bank = int(pairwise_bank)
        zeros = keras.initializers.Zeros()
        self.bank_codes = self.add_weight(
            shape=(self.pairwise_bank, self.bits), initializer=zeros, trainable=False
        )
        self.bank_labels = self.add_weight(
            shape=(self.pairwise_bank, self.num_classes),
            initializer=zeros,
            trainable=False,
        )
        self.bank_next = self.add_weight(
            shape=(), initializer=zeros, dtype="int32", trainable=False
        )

    def compute_objective(self, images, labels, training=False):
        if not training or "pairwise_loss" not in self.objective.term_names:
            return super().compute_objective(images, labels, training=training)
        outputs = self(images, training=True)
        y = multi_hot(labels, self.num_classes)
        codes = outputs["pairwise"]
        references = {
            "codes": ops.concatenate([codes, self.bank_codes], axis=0),
            "labels": ops.concatenate([y, self.bank_labels], axis=0),
        }
        total, terms = self.objective(outputs, y, references)
        # Write the batch over the oldest slots (DPSH's U[ind] = u).
        batch = ops.shape(codes)[0]
        slots = (self.bank_next + ops.arange(batch, dtype="int32")) % self.pairwise_bank
        slots = ops.expand_dims(slots, -1)
        detached = ops.stop_gradient(codes)
        self.bank_codes.assign(ops.scatter_update(self.bank_codes, slots, detached))
        self.bank_labels.assign(ops.scatter_update(self.bank_labels, slots, y))
        self.bank_next.assign((self.bank_next + batch) % self.pairwise_bank)
        return total, {"loss": total, **terms}, outputs

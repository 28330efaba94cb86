"""The MLH training objective: `L = λ1·L_C + λ2·L_P + λ3·L_M` and its terms."""

from keras import ops

from keras_mlh.labels import is_class_id_column
from keras_mlh.losses.center_hash_loss import CenterHashLoss, CSQHashLoss
from keras_mlh.losses.mutual_hash_loss import MutualHashLoss
from keras_mlh.losses.pairwise_hash_loss import PairwiseHashLoss

TERMS = ("center_loss", "pairwise_loss", "mutual_loss", "csq_loss")


def multi_hot(labels, num_classes):
    """Class ids `(batch,)` / `(batch, 1)` as float32 one-hot rows, or multi-hot."""
    if is_class_id_column(ops.shape(labels)):
        ids = ops.reshape(ops.cast(labels, "int32"), (-1,))
        return ops.one_hot(ids, num_classes)
    return ops.cast(labels, "float32")


class MLHObjective:
    """The weighted MLH loss of one batch, backend-agnostic (`keras.ops`).

    `L_C` (`CenterHashLoss` of `u_c`), `L_P` (`PairwiseHashLoss` of `u_p`),
    `L_M = (1 - cos(u_c, sg(u_p))) + (1 - cos(u_p, sg(u_c)))` (`sg`: stop
    gradient) and the `"csq"` branch's `CSQHashLoss`, each the batch mean
    (never divided by a replica count), when its weight is > 0 and its
    branches exist.

    Args:
        centers: `(num_classes, bits)` ±1 hash centers.
        weights: a `keras_mlh.models.modes.LossWeights`.
        seed: seed of `CSQHashLoss`'s tie center (multi-label data).

    Returns:
        Called on the branch codes (`{"center": u_c, ...}`), multi-hot labels
        and the pairwise term's `references` (`{"codes", "labels"}`, default
        the batch): `(total, unweighted active terms)`.

    Example:
    >>> from keras_mlh.centers import hash_centers
    >>> from keras_mlh.models.modes import MODES
    >>> objective = MLHObjective(hash_centers(10, 16).centers,
    ...                          ("center", "pairwise"), MODES["mlh"].weights)
    >>> u = keras.ops.tanh(keras.random.normal((4, 16), seed=0))
    >>> y = multi_hot(keras.ops.array([0, 1, 1, 3]), 10)
    >>> total, terms = objective({"center": u, "pairwise": -u}, y)
    >>> sorted(terms)
    ['center_loss', 'mutual_loss', 'pairwise_loss']
    """

    def __init__(
        self,
        centers,
        branches,
        weights,
        center_loss_normalization="sample_class",
        seed=0,
    ):
        self.branches = tuple(branches)
        self.weights = weights
        # The losses' defaults are MDSH's, CSQ's and DPSH's settings.
        self.center_loss = CenterHashLoss(
            centers, normalization=center_loss_normalization, reduction="none"
        )
        self.pairwise_loss = PairwiseHashLoss(reduction="none")
        self.mutual_loss = MutualHashLoss(reduction="none")
        self.csq_loss = CSQHashLoss(centers, seed=seed, reduction="none")
        active = {
            "center_loss": weights.center > 0 and "center" in self.branches,
            "pairwise_loss": weights.pairwise > 0 and "pairwise" in self.branches,
            "mutual_loss": weights.mutual > 0 and len(self.branches) == 2,
            "csq_loss": weights.csq > 0 and "csq" in self.branches,
        }
        self.term_names = tuple(name for name in TERMS if active[name])

    def term_weight(self, name):  # `name` one of `TERMS`
        return getattr(self.weights, name[: -len("_loss")])

    def __call__(self, outputs, labels, references=None):
        u = {
            b: ops.convert_to_tensor(outputs[b]) for b in self.branches if b in outputs
        }
        terms = {}
        if "center_loss" in self.term_names:
            terms["center_loss"] = ops.mean(self.center_loss(labels, u["center"]))
        if "pairwise_loss" in self.term_names:
            references = references or {"codes": u["pairwise"], "labels": labels}
            y = {"labels": labels, "reference_labels": references["labels"]}
            u_p = {"codes": u["pairwise"], "reference_codes": references["codes"]}
            terms["pairwise_loss"] = ops.mean(self.pairwise_loss(y, u_p))
        if "mutual_loss" in self.term_names:
            u_c, u_p = u["center"], u["pairwise"]
            terms["mutual_loss"] = ops.mean(
                self.mutual_loss(ops.stop_gradient(u_p), u_c)
            ) + ops.mean(self.mutual_loss(ops.stop_gradient(u_c), u_p))
        if "csq_loss" in self.term_names:
            terms["csq_loss"] = ops.mean(self.csq_loss(labels, u["csq"]))
        total = ops.zeros((), "float32")
        for name, value in terms.items():
            total = total + self.term_weight(name) * value
        return total, terms


def bit_balance(codes):
    """`1 - mean_bits |mean_batch sign(codes)|` (sign 0 is +1): 1 when balanced."""
    signs = ops.where(codes >= 0, 1.0, -1.0)
    return 1.0 - ops.mean(ops.abs(ops.mean(signs, axis=0)))


def quantization_error(codes):
    """`mean((|codes| - 1)^2)`: how far the codes are from ±1."""
    return ops.mean(ops.square(ops.abs(codes) - 1.0))

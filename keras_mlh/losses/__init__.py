from keras_mlh.backends import check_keras_backend

check_keras_backend()  # before any Keras import: a clear error for a bad backend

from keras_mlh.losses.center_hash_loss import CenterHashLoss, CSQHashLoss  # noqa: E402
from keras_mlh.losses.mlh_objective import MLHObjective  # noqa: E402
from keras_mlh.losses.mutual_hash_loss import MutualHashLoss  # noqa: E402
from keras_mlh.losses.pairwise_hash_loss import PairwiseHashLoss  # noqa: E402

__all__ = [
    "CenterHashLoss",
    "CSQHashLoss",
    "MLHObjective",
    "MutualHashLoss",
    "PairwiseHashLoss",
]

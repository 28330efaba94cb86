from keras_mlh.losses.center_hash_loss import CenterHashLoss
from keras_mlh.losses.mutual_hash_loss import MutualHashLoss
from keras_mlh.losses.pairwise_hash_loss import PairwiseHashLoss

__all__ = ["CenterHashLoss", "MutualHashLoss", "PairwiseHashLoss"]

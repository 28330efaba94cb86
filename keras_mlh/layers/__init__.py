# Before any Keras import: a missing backend package gets a clear error.
from keras_mlh.backends import check_keras_backend

check_keras_backend()

from keras_mlh.layers.hash_layer import HashLayer  # noqa: E402
from keras_mlh.layers.mixture_of_hash_experts import MixtureOfHashExperts  # noqa: E402

__all__ = ["HashLayer", "MixtureOfHashExperts"]

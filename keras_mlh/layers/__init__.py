from keras_mlh.backends import check_keras_backend

check_keras_backend()  # before any Keras import: a clear error for a bad backend

from keras_mlh.layers.hash_layer import HashLayer, MixtureOfHashExperts  # noqa: E402

__all__ = ["HashLayer", "MixtureOfHashExperts"]

from keras_mlh.layers.hash_layer import HashLayer
from keras_mlh.layers.mixture_of_hash_experts import MixtureOfHashExperts

__all__ = ["HashLayer", "MixtureOfHashExperts"]

"""Hamming indexes of binary codes (numpy and faiss only, no TensorFlow)."""

from keras_mlh_runtime.index.hamming_index import KINDS, MISSING_DISTANCE, HammingIndex

__all__ = ["KINDS", "MISSING_DISTANCE", "HammingIndex"]

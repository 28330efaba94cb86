"""Hamming indexes of binary codes (numpy and faiss only, no TensorFlow)."""

from keras_mlh.index.file_set import index_files
from keras_mlh.index.hamming_index import KINDS, MISSING_DISTANCE, HammingIndex

__all__ = ["KINDS", "MISSING_DISTANCE", "HammingIndex", "index_files"]

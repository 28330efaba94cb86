"""Hamming indexes of binary codes (numpy and faiss only, no TensorFlow)."""

import os

from keras_mlh.index.hamming_index import KINDS, MISSING_DISTANCE, HammingIndex

PATHS_SUFFIX = ".paths.json"


def index_files(path):
    """Every file that belongs to the index saved at `path`.

    The faiss file, its JSON sidecar and the id -> path map that
    `keras-mlh index build` writes for codes of image files (which may be
    absent). A command that reads an index must write over none of them.

    Args:
        path: the index file.

    Returns:
        The list of paths `[path, path + ".json", path + ".paths.json"]`.

    Example:
    >>> index_files("db.index")
    ['db.index', 'db.index.json', 'db.index.paths.json']
    """
    path = os.fspath(path)
    return [path, path + ".json", path + PATHS_SUFFIX]


__all__ = ["KINDS", "MISSING_DISTANCE", "PATHS_SUFFIX", "HammingIndex", "index_files"]

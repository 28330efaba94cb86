"""Hamming indexes of binary codes: `keras_mlh_runtime.index` under its keras-mlh name.

`HammingIndex` and its id checks live in the TensorFlow-free
runtime distribution (numpy and faiss only), which serving machines install
without keras-mlh. This package and its submodules are aliases of those
modules (`keras_mlh.index.HammingIndex is keras_mlh_runtime.HammingIndex`).
"""

import sys

import keras_mlh_runtime.index
import keras_mlh_runtime.index.hamming_index
import keras_mlh_runtime.index.id_set

for _name in ("hamming_index", "id_set"):
    sys.modules[f"{__name__}.{_name}"] = getattr(keras_mlh_runtime.index, _name)
sys.modules[__name__] = keras_mlh_runtime.index

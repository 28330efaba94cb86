"""Argument checks as one-line `ValueError`s: `keras_mlh_runtime.errors`.

An alias (`keras_mlh.errors is keras_mlh_runtime.errors`): the checks live in
the TensorFlow-free runtime distribution, which training and serving share.
"""

import sys

import keras_mlh_runtime.errors

sys.modules[__name__] = keras_mlh_runtime.errors

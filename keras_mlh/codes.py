"""Binary codes and their bit order: `keras_mlh_runtime.codes` under its keras-mlh name.

The one home of the code rules is the TensorFlow-free runtime distribution,
which serving machines install without keras-mlh; this name is an alias of
that module (`keras_mlh.codes is keras_mlh_runtime.codes`).
"""

import sys

import keras_mlh_runtime.codes

sys.modules[__name__] = keras_mlh_runtime.codes

"""MLH models, their backbones and training modes.

Names resolve on first use (PEP 562): `modes` and `applications` import
without Keras, for the command line's `--help`.
"""

import importlib
import sys

from keras_mlh.backends import check_keras_backend

check_keras_backend()  # before any Keras import: a clear error for a bad backend

# With Keras imported, the classes register now, for `keras.saving.load_model`.
if "keras" in sys.modules:
    importlib.import_module("keras_mlh.models.mlh")

_PUBLIC = {
    "MLH": "keras_mlh.models.mlh",
    "MODES": "keras_mlh.models.mlh",
    "load_model": "keras_mlh.models.mlh",
    "LossWeights": "keras_mlh.models.modes",
    "Mode": "keras_mlh.models.modes",
    "APPLICATIONS": "keras_mlh.models.applications",
    "SmallConvBackbone": "keras_mlh.models.backbones",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_mlh.models' has no attribute {name!r}")


def __dir__():
    return __all__

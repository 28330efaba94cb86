"""MLH models, their backbones and training modes.

The names are resolved on first use (PEP 562), so the Keras-free parts
(`keras_mlh.models.modes`, `keras_mlh.models.applications`) import without
Keras: the command line takes its choices from them for `--help`.
"""

import importlib
import sys

# Before any Keras import: a missing backend package gets a clear error.
from keras_mlh.backends import check_keras_backend

check_keras_backend()

# A process that has imported Keras gets the classes registered on import, as
# before, so `keras.saving.load_model` finds them; without Keras (the command
# line's --help) nothing heavy is imported.
if "keras" in sys.modules:
    importlib.import_module("keras_mlh.models.mlh")

# Public name -> module that defines it.
_PUBLIC = {
    "APPLICATIONS": "keras_mlh.models.applications",
    "MLH": "keras_mlh.models.mlh",
    "MODES": "keras_mlh.models.modes",
    "LossWeights": "keras_mlh.models.modes",
    "Mode": "keras_mlh.models.modes",
    "SmallConvBackbone": "keras_mlh.models.backbones",
    "load_model": "keras_mlh.models.loading",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'keras_mlh.models' has no attribute {name!r}")


def __dir__():
    return __all__

"""keras-mlh: Mutual Learning for Hashing in Keras 3.

Names load on first use (PEP 562); with Keras imported first the classes
register, so `keras.saving.load_model` works in a fresh process.

Example:
>>> import keras, keras_mlh
>>> keras_mlh.MLH(num_classes=10, bits=16).save("model.keras")
>>> model = keras.saving.load_model("model.keras")  # in any later process too
"""

import importlib
import sys

from keras_mlh.version import __version__ as __version__

_PUBLIC = {
    name: module
    for module, names in {
        "keras_mlh.models": "MLH MODES load_model",
        "keras_mlh.centers": "hash_centers",
        "keras_mlh.metrics": "mean_average_precision",
        "keras_mlh.evaluation": "retrieval_report",
        "keras_mlh.callbacks": "RetrievalMetricsCallback",
        "keras_mlh.export": "export_encoder",
        "keras_mlh_runtime.index": "HammingIndex",
        "keras_mlh_runtime.codes": "pack_codes unpack_codes",
    }.items()
    for name in names.split()
}
_SUBMODULES = set(
    "callbacks centers cli datasets evaluation export labels "
    "layers losses metrics models plot training".split()
)

__all__ = sorted([*_PUBLIC, *_SUBMODULES, "__version__"])


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_mlh.{name}")
    raise AttributeError(f"module 'keras_mlh' has no attribute {name!r}")


def __dir__():
    return __all__


# With Keras loaded the classes cost little; MLH's module imports them all.
if "keras" in sys.modules:
    importlib.import_module("keras_mlh.models.mlh")

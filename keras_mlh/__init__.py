"""keras-mlh: Mutual Learning for Hashing in Keras 3.

Submodules (keras-rs style): `layers`, `losses`, `models`, `metrics`,
`datasets`, `callbacks`, `evaluation`, `export`, `labels`, `centers`,
`augmentation`, `plot`, `training`, `cli`. The top level adds a few headline
names:

- `MLH` and `MODES` (`keras_mlh.models`), `load_model` (a saved MLH);
- `hash_centers` (`keras_mlh.centers`);
- `mean_average_precision` (`keras_mlh.metrics`), `retrieval_report`
  (`keras_mlh.evaluation`), `RetrievalMetricsCallback`;
- `export_encoder` (`keras_mlh.export`);
- `HammingIndex`, `pack_codes` and `unpack_codes`, from the TensorFlow-free
  serving distribution, `keras_mlh_runtime` (its `index` and `codes`
  modules hold the rest of those rules).

Names and submodules are resolved on first use (PEP 562), so that the
TensorFlow-free parts (`keras_mlh.metrics`, `keras-mlh --help`) stay light.
The serializable classes (layers, losses, backbones, `MLH`) register with
Keras where they are defined, when their module is imported: on the first
`keras_mlh.MLH` or `keras_mlh.load_model`, or here when Keras is imported
already, so `import keras, keras_mlh` is enough for
`keras.saving.load_model` in a fresh process.

Example:
>>> import keras, keras_mlh
>>> keras_mlh.MLH(num_classes=10, bits=16).save("model.keras")
>>> model = keras.saving.load_model("model.keras")  # in any later process too
>>> model.encode(np.zeros((3, 28, 28, 1), np.uint8)).shape
(3, 16)
"""

import importlib
import sys

from keras_mlh.version import __version__ as __version__

# Headline name -> module that defines it.
_PUBLIC = {
    "MLH": "keras_mlh.models",
    "MODES": "keras_mlh.models",
    "load_model": "keras_mlh.models",
    "hash_centers": "keras_mlh.centers",
    "mean_average_precision": "keras_mlh.metrics",
    "retrieval_report": "keras_mlh.evaluation",
    "RetrievalMetricsCallback": "keras_mlh.callbacks",
    "export_encoder": "keras_mlh.export",
    "HammingIndex": "keras_mlh_runtime.index",
    "pack_codes": "keras_mlh_runtime.codes",
    "unpack_codes": "keras_mlh_runtime.codes",
}

_SUBMODULES = {
    "augmentation",
    "callbacks",
    "centers",
    "cli",
    "datasets",
    "evaluation",
    "export",
    "labels",
    "layers",
    "losses",
    "metrics",
    "models",
    "plot",
    "training",
}

__all__ = sorted([*_PUBLIC, *_SUBMODULES, "__version__"])


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_mlh.{name}")
    raise AttributeError(f"module 'keras_mlh' has no attribute {name!r}")


def __dir__():
    return __all__


# With Keras loaded, importing the classes costs little, and a model saved
# earlier then loads with `keras.saving.load_model` alone. MLH's module
# imports every layer, loss and backbone.
if "keras" in sys.modules:
    importlib.import_module("keras_mlh.models.mlh")

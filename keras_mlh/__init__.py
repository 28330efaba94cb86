"""keras-mlh: Mutual Learning for Hashing in Keras 3.

Submodules (keras-rs style): `layers`, `losses`, `models`, `metrics`,
`datasets`, `callbacks`, `evaluation`, `export`, `index`, `codes`,
`centers`, `augmentation`, `plot`, `training`, `cli`. The top level adds a
few headline names:

- `MLH` and `MODES` (`keras_mlh.models`), `load_model` (a saved MLH);
- `hash_centers` (`keras_mlh.centers`);
- `mean_average_precision` (`keras_mlh.metrics`), `retrieval_report`
  (`keras_mlh.evaluation`), `RetrievalMetricsCallback`;
- `export_encoder` (`keras_mlh.export`), `HammingIndex`, `pack_codes` and
  `unpack_codes` (from the TensorFlow-free `keras_mlh_runtime`, which
  `keras_mlh.index` and `keras_mlh.codes` alias).

Importing keras_mlh registers every serializable class (the layers, losses,
backbones and `MLH`) with Keras, so a fresh process can
`import keras, keras_mlh` and `keras.saving.load_model("model.keras")`.
Those classes need Keras, and so TensorFlow; so that the TensorFlow-free
parts (`keras_mlh.metrics`, `keras_mlh.index`, `keras_mlh.codes`) and
`keras-mlh --help` stay light, the registration runs as soon as Keras is
imported: at once when it already is, else right after the process's first
`import keras` (which any `load_model` needs). Headline names and submodules
are resolved on first use (PEP 562).

Example:
>>> import keras, keras_mlh
>>> keras_mlh.MLH(num_classes=10, bits=16).save("model.keras")
>>> model = keras.saving.load_model("model.keras")  # in any later process too
>>> model.encode(np.zeros((3, 28, 28, 1), np.uint8)).shape
(3, 16)
"""

import importlib
import importlib.abc
import importlib.util
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
    "codes",
    "datasets",
    "evaluation",
    "export",
    "index",
    "layers",
    "losses",
    "metrics",
    "models",
    "plot",
    "training",
}

# The modules whose import registers keras_mlh's serializable classes.
_REGISTERING = ("keras_mlh.layers", "keras_mlh.losses", "keras_mlh.models")

__all__ = sorted([*_PUBLIC, *_SUBMODULES, "__version__"])


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_mlh.{name}")
    raise AttributeError(f"module 'keras_mlh' has no attribute {name!r}")


def __dir__():
    return __all__


def _register():
    for module in _REGISTERING:
        importlib.import_module(module)


class _RegisterAfterKeras(importlib.abc.MetaPathFinder):
    """Finds `keras` the usual way and runs `_register` once it has loaded."""

    def find_spec(self, name, path=None, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)  # once; and not asked again just below
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    """Keras's own loader, followed by keras_mlh's registration."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):  # resource readers and the like
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        module.__loader__ = module.__spec__.loader = self._loader
        try:
            _register()
        except Exception:  # noqa: BLE001
            # A broken backend must not make `import keras` fail; the same
            # error is raised, with its message, on `keras_mlh.models`.
            pass


if "keras" in sys.modules:
    _register()
else:
    sys.meta_path.insert(0, _RegisterAfterKeras())

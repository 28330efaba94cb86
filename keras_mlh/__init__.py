"""keras-mlh: Mutual Learning for Hashing in Keras 3.

The public API is resolved lazily (PEP 562) so that the TensorFlow-free parts
(`keras_mlh.codes`, `keras_mlh.index`, `keras_mlh.metrics`) can be imported on a
deployment machine that has neither Keras nor TensorFlow installed.
"""

import importlib

from keras_mlh.version import __version__ as __version__

# Public name -> module that defines it.
_PUBLIC = {
    "MLH": "keras_mlh.models.mlh",
    "MODES": "keras_mlh.models.modes",
    "SmallConvBackbone": "keras_mlh.models.backbones",
    "MixtureOfHashExperts": "keras_mlh.layers.mixture_of_hash_experts",
    "HashLayer": "keras_mlh.layers.hash_layer",
    "CodeMemory": "keras_mlh.layers.code_memory",
    "MLHObjective": "keras_mlh.losses.mlh_objective",
    "CenterHashLoss": "keras_mlh.losses.center_hash_loss",
    "PairwiseHashLoss": "keras_mlh.losses.pairwise_hash_loss",
    "MutualHashLoss": "keras_mlh.losses.mutual_hash_loss",
    "HashCenters": "keras_mlh.centers",
    "hash_centers": "keras_mlh.centers",
    "gilbert_varshamov_distance": "keras_mlh.centers",
    "pack_codes": "keras_mlh.codes",
    "unpack_codes": "keras_mlh.codes",
    "HammingIndex": "keras_mlh.index",
    "mean_average_precision": "keras_mlh.metrics",
    "RetrievalMetricsCallback": "keras_mlh.callbacks",
    "retrieval_report": "keras_mlh.evaluation",
    "export_encoder": "keras_mlh.export",
    "default_augmentation": "keras_mlh.augmentation",
    "keras_cv_layer": "keras_mlh.augmentation",
}

# Subpackages reachable as attributes (`keras_mlh.datasets.mnist5k()`).
_SUBMODULES = {
    "augmentation",
    "callbacks",
    "centers",
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

__all__ = sorted([*_PUBLIC, *_SUBMODULES, "__version__"])


def __getattr__(name):
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_mlh.{name}")
    raise AttributeError(f"module 'keras_mlh' has no attribute {name!r}")


def __dir__():
    return __all__

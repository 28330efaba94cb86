"""Which Keras backends keras-mlh runs on, checked before Keras is imported
(Keras fails on a missing backend package with a bare `ModuleNotFoundError`)."""

import contextlib
import importlib.util
import json
import os
import sys

# Backend -> (packages it imports, what to install).
SUPPORTED = {
    "tensorflow": (("tensorflow",), "pip install tensorflow-cpu (or tensorflow)"),
    "jax": (("jax", "jaxlib"), "pip install jax jaxlib (or jax[cuda12] for GPUs)"),
    "torch": (("torch",), "pip install torch (the CPU or CUDA build)"),
}


def check_keras_backend(name=None):
    """Raises a `ValueError` naming what to install unless keras-mlh can train.

    Args:
        name: a backend name; `None`: the imported Keras's, else
            `KERAS_BACKEND`, else `keras.json`'s.

    Returns:
        The backend name.

    Example:
    >>> check_keras_backend("tensorflow")
    'tensorflow'
    """
    keras = sys.modules.get("keras")
    if name is None and keras is not None and hasattr(keras, "backend"):
        name = keras.backend.backend()
    elif name is None:
        name = os.environ.get("KERAS_BACKEND")
        home = os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras")
        with contextlib.suppress(OSError, ValueError, AttributeError):
            with open(os.path.join(home, "keras.json")) as file:
                name = name or json.load(file).get("backend")
        name = name or "tensorflow"
    if name not in SUPPORTED:
        raise ValueError(
            f"keras-mlh trains on the Keras backends {sorted(SUPPORTED)}; "
            f"KERAS_BACKEND={name!r} is not one of them. Set KERAS_BACKEND to one "
            "of them before importing keras."
        )
    packages, install = SUPPORTED[name]
    missing = [p for p in packages if importlib.util.find_spec(p) is None]
    if missing:
        raise ValueError(
            f"KERAS_BACKEND={name!r} needs the {' and '.join(missing)} package, "
            f"which is not installed: {install}, or choose another backend."
        )
    return name

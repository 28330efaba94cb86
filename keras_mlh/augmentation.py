"""Training-time augmentation: core Keras layers, keras-cv behind an adapter.

keras-cv is frozen upstream (last release 0.9.0, April 2024) and reaches into
private Keras modules, so a future Keras can break it. The core package never
imports it; `keras_cv_layer` does, only when asked, and says how to install it.
"""

import importlib

import keras


def default_augmentation():
    """Light geometric augmentation, safe for digits and natural images alike.

    Returns:
        A `keras.Sequential` of small random translations and rotations (no
        flips, which change the meaning of digits and text).

    Example:
    >>> model = keras_mlh.MLH(num_classes=10, augmentation=default_augmentation())
    """
    return keras.Sequential(
        [
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant"),
            keras.layers.RandomRotation(0.04, fill_mode="constant"),
        ],
        name="augmentation",
    )


def augmentation_layer(augmentation):
    """`MLH`'s `augmentation` argument as one layer (or `None`).

    Args:
        augmentation: `None`, `"default"` (`default_augmentation()`), a Keras
            layer, or a list of layers (applied in order).

    Returns:
        A Keras layer, or `None`.

    Example:
    >>> augmentation_layer([keras.layers.RandomZoom(0.1)]).name
    'augmentation'
    """
    if augmentation == "default":
        return default_augmentation()
    if isinstance(augmentation, str):
        raise ValueError(
            "`augmentation` must be None, 'default', a Keras layer or a list of "
            f"layers. Received: {augmentation!r}"
        )
    if isinstance(augmentation, (list, tuple)):
        return keras.Sequential(list(augmentation), name="augmentation")
    return augmentation


def keras_cv_layer(name, **kwargs):
    """A keras-cv preprocessing layer by class name (optional dependency).

    Args:
        name: class name in `keras_cv.layers`, e.g. `"RandomCutout"`.
        **kwargs: the layer's constructor arguments.

    Returns:
        The keras-cv layer, usable in `MLH(augmentation=[...])`.

    Example:
    >>> cutout = keras_cv_layer("RandomCutout", height_factor=0.3, width_factor=0.3)
    >>> model = keras_mlh.MLH(num_classes=10, augmentation=[cutout])
    """
    try:
        layers = importlib.import_module("keras_cv.layers")
    except ImportError as error:
        raise ImportError(
            "keras-cv is an optional extra: pip install 'keras-mlh[keras-cv]'. "
            "Core Keras has RandAugment, MixUp, CutMix, AugMix, RandomErasing and "
            "more under keras.layers, which need no extra install."
        ) from error
    layer_class = getattr(layers, name, None)
    if layer_class is None or not isinstance(layer_class, type):
        raise ValueError(f"keras_cv.layers has no layer named {name!r}.")
    return layer_class(**kwargs)

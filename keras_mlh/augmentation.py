"""Training-time augmentation: any Keras layers (keras-cv's too, as they are)."""

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

"""Training-time augmentation: any Keras layers (keras-cv's too, as they are)."""

import keras


def default_augmentation():
    """Small random translations and rotations (no flips: they change digits).

    Example:
    >>> model = keras_mlh.MLH(num_classes=10, augmentation=default_augmentation())
    """
    translation = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant")
    rotation = keras.layers.RandomRotation(0.04, fill_mode="constant")
    return keras.Sequential([translation, rotation], name="augmentation")


def augmentation_layer(augmentation):
    """`MLH`'s `augmentation` (`None`, `"default"`, a layer or a list) as a layer."""
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

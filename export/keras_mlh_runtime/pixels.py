"""Checks on arrays of images before they are encoded or trained on.

numpy only: the messages name the problem and the fix instead of letting an
onnxruntime or TensorFlow error surface from deep inside a graph.
"""

import numpy as np


def validate_images(images, image_shape=None, name="images"):
    """Checks a batch of images and returns it as a numpy array.

    Args:
        images: array-like `(n, height, width, channels)` of raw pixels
            (uint8, or floats in [0, 255]). A `(n, height, width)` array is
            read as single-channel images.
        image_shape: optional expected `(height, width, channels)`; `None`
            entries are not checked.
        name: how the argument is called in error messages.

    Returns:
        The images as a numpy array of rank 4.

    Raises:
        ValueError: on a wrong rank, shape or channel count, a non-numeric
            dtype, NaN or infinite values, or an empty batch.
    """
    array = np.asarray(images)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
    ):
        raise ValueError(
            f"`{name}` must be numeric pixel values (uint8 or float). "
            f"Received: dtype={array.dtype}"
        )
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4:
        known = image_shape is not None and None not in tuple(image_shape)
        example = ", ".join(map(str, image_shape)) if known else "28, 28, 1"
        raise ValueError(
            f"`{name}` must have shape (num_images, height, width, channels); "
            f"reshape flat images first, e.g. x.reshape(-1, {example}). "
            f"Received: shape={array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"`{name}` is empty: pass at least one image.")
    if np.issubdtype(array.dtype, np.floating) and not np.all(np.isfinite(array)):
        bad = int(np.sum(~np.isfinite(array)))
        raise ValueError(
            f"`{name}` contains {bad} NaN or infinite values; clean or drop those "
            "images before training or encoding."
        )
    if image_shape is not None:
        expected = tuple(image_shape)
        for axis, (got, want) in enumerate(
            zip(array.shape[1:], expected, strict=False)
        ):
            if want is not None and got != want:
                what = ("height", "width", "channels")[axis]
                raise ValueError(
                    f"`{name}` have {what}={got} but the model expects "
                    f"{what}={want} (image shape {expected}); resize or convert "
                    f"the images. Received: shape={array.shape}"
                )
    return array

"""Checks of arguments and pixels: a `ValueError` naming the problem and
the fix; other libraries' multi-line messages are quoted by `first_line`."""

import numpy as np


def first_line(error):
    """The first non-empty line of an exception's message (else its type).

    Example:
    >>> first_line(RuntimeError("bad header\\n  at foo.cc:12"))
    'bad header'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_int_in_range(name, value, low, high, why=""):
    """`value`, an integer (Python or numpy, not bool) in `[low, high]`, as
    an int; else a `ValueError` naming the argument `name` (and `why`).

    Example:
    >>> check_int_in_range("nprobe", np.int32(8), 1, 1024)
    8
    """
    if not is_int(value) or not low <= value <= high:
        raise ValueError(
            f"`{name}` must be an integer from {low} to {high}{why}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def check_positive_int(name, value, allow_none=False):
    """An integer argument >= 1 (or `None` with `allow_none`), as an int.

    Example:
    >>> check_positive_int("batch_size", np.int64(64))
    64
    """
    if value is None and allow_none:
        return None
    if not is_int(value) or value < 1:
        either = "None or " if allow_none else ""
        raise ValueError(
            f"`{name}` must be {either}a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def is_int(value):
    """Whether `value` is an integer, Python or numpy (not a bool)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def validate_images(images, image_shape=None, name="images", any_int=True):
    """A batch of raw pixels as a rank-4 numpy array, checked.

    Args:
        images: `(n, height, width[, channels])` pixels in [0, 255].
        image_shape: the expected `(height, width, channels)` (`None`: any).
        name: the argument's name, for messages.
        any_int: accept any integer dtype, not only uint8 (and floats).

    Returns:
        The images, a numpy array of rank 4.

    Example:
    >>> validate_images(np.zeros((2, 28, 28), np.uint8), (28, 28, 1)).shape
    (2, 28, 28, 1)
    """
    array = np.asarray(images)
    if array.dtype.kind not in ("iuf" if any_int else "f") and array.dtype != np.uint8:
        raise ValueError(
            f"`{name}` must be uint8 or float (numeric) pixels in [0, 255]; convert "
            f"them, e.g. {name}.astype(np.float32). Received: dtype={array.dtype}"
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
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise ValueError(
            f"`{name}` contains {int(np.sum(~np.isfinite(array)))} NaN or infinite "
            "values; clean or drop those images before training or encoding."
        )
    for what, got, want in zip(
        ("height", "width", "channels"),
        array.shape[1:],
        image_shape or (),
        strict=False,
    ):
        if want is not None and got != want:
            raise ValueError(
                f"`{name}` have {what}={got} but the model expects {what}={want} "
                f"(image shape {tuple(image_shape)}); resize or convert the images. "
                f"Received: shape={array.shape}"
            )
    return array

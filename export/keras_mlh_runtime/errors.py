"""Argument checks and third-party exceptions as one-line `ValueError`s.

Libraries underneath (faiss, onnxruntime, PIL, Keras's loader) raise their own
exception types with multi-line messages; the package re-raises them as a
`ValueError` naming the problem and the fix, quoting only the first line.
TensorFlow-free: the deployment runtime uses it too.
"""

import numpy as np


def first_line(error):
    """The first non-empty line of an exception's message.

    Args:
        error: any exception.

    Returns:
        That line, stripped, or the exception's type name when the message is
        empty.

    Example:
    >>> first_line(RuntimeError("bad header\\n  at foo.cc:12"))
    'bad header'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def check_positive_int(name, value, allow_none=False):
    """Checks an integer argument (Python or numpy) that must be >= 1.

    Args:
        name: the argument's name, for the message.
        value: the value passed.
        allow_none: whether `None` (meaning "not set") is accepted.

    Returns:
        `value` as a Python int, or `None`.

    Raises:
        ValueError: for booleans, floats, strings, zero or negatives.

    Example:
    >>> check_positive_int("batch_size", np.int64(64))
    64
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        either = "None or " if allow_none else ""
        raise ValueError(
            f"`{name}` must be {either}a positive integer. Received: {name}={value!r}"
        )
    return int(value)


def check_int_in_range(name, value, low, high, why=""):
    """Checks an integer argument (Python or numpy) in `[low, high]`.

    Args:
        name: the argument's name, for the message.
        value: the value passed.
        low, high: the bounds, both allowed.
        why: an optional note after the bounds in the message, e.g.
            `" (the newest tf2onnx converts to)"`.

    Returns:
        `value` as a Python int.

    Raises:
        ValueError: for booleans, floats, strings and values out of range.

    Example:
    >>> check_int_in_range("nprobe", np.int32(8), 1, 1024)
    8
    """
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, np.integer))
        or not low <= value <= high
    ):
        raise ValueError(
            f"`{name}` must be an integer from {low} to {high}{why}. "
            f"Received: {name}={value!r}"
        )
    return int(value)

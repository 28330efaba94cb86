"""Turning third-party exceptions into one-line `ValueError` messages.

Libraries underneath (faiss, onnxruntime, PIL, Keras's loader) raise their own
exception types with multi-line messages; the package re-raises them as a
`ValueError` naming the problem and the fix, quoting only the first line.
TensorFlow-free: the deployment runtime uses it too.
"""


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

"""Errors of the `keras-mlh` command line and how they are shown.

Every error a user can fix is a `ValueError` (the library's own, or a
`CLIError` raised here) whose message says what to do; `main` prints it as
one line, `one_line` makes sure of that.
"""


class CLIError(ValueError):
    """A user error with a message that says what to do."""


def one_line(error):
    """The message of `error` on one line, for `keras-mlh: error: ...`.

    Args:
        error: any exception.

    Returns:
        The first line of the message (an `OSError`'s reason and file name);
        the exception type first for errors other than `ValueError` and
        `OSError` (those are bugs or surprises, the type helps), and a hint
        to `--debug` when lines were left out.
    """
    if isinstance(error, OSError) and error.strerror:
        message = error.strerror
        if error.filename:
            message += f": {error.filename!r}"
    else:
        message = str(error)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if not isinstance(error, (ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    if len(lines) > 1:
        text += " [...] (rerun with --debug for the full message)"
    return text

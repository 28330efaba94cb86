"""Errors of the `keras-mlh` command line, shown by `main` as one line."""


class CLIError(ValueError):
    """A user error with a message that says what to do."""


def one_line(error):
    """The message of `error` on one line, for `keras-mlh: error: ...`.

    The first line of the message (an `OSError`'s reason and file name), the
    exception type first for errors other than `ValueError` and `OSError`
    (bugs or surprises: the type helps), and a hint to `--debug` when lines
    were left out.
    """
    if isinstance(error, OSError) and error.strerror:
        message = error.strerror + (f": {error.filename!r}" if error.filename else "")
    else:
        message = str(error)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if not isinstance(error, (ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    if len(lines) > 1:
        text += " [...] (rerun with --debug for the full message)"
    return text

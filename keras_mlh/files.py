"""Atomic file writes: a crash never leaves a truncated file under the name."""

import contextlib
import json
import os
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path beside `path`, renamed to `path` on success.

    The temporary file lives in the same folder, so the final `os.replace` is
    atomic; on an exception it is removed and `path` keeps its old content.

    Args:
        path: the destination file; its folder must exist.

    Example:
    >>> with atomic_path("codes.npy") as temp:
    ...     np.save(open(temp, "wb"), codes)
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ValueError(f"Folder does not exist: {folder!r}; create it first.")
    handle, temp = tempfile.mkstemp(dir=folder, prefix=".tmp-keras-mlh-")
    os.close(handle)
    try:
        yield temp
        os.replace(temp, path)
    finally:
        if os.path.exists(temp):
            os.remove(temp)


def write_json(data, path):
    """Writes `data` as indented JSON to `path` atomically, creating its folder.

    Returns:
        The path written.
    """
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_path(path) as temp, open(temp, "w") as f:
        json.dump(data, f, indent=2)
    return os.fspath(path)

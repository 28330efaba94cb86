"""Atomic writes: an output is replaced whole, or not at all.

A file is written under a hidden temporary name (`TEMP_PREFIX...`) beside
it, fsynced and renamed over it (`os.replace`): a crash, `kill -9` or a full
disk leaves the previous file or nothing; a failed write removes its
temporary and raises a `ValueError` naming the path. Temporaries get mode
0666/0777 less the umask (not `tempfile`'s 0600).
"""

import contextlib
import errno
import json
import os
import secrets
import shutil

TEMP_PREFIX = ".keras-mlh-"
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


def check_writable(path, kind=None):
    """Fails early (creating nothing) when `path` cannot be written.

    Args:
        path: the file or folder to write.
        kind: `"file"` refuses a folder at `path`, `"folder"` a file.

    Returns:
        The absolute path.

    Example:
    >>> check_writable("out/codes.npz") == os.path.abspath("out/codes.npz")
    True
    """
    path = os.path.abspath(os.fspath(path))
    if kind == "file" and os.path.isdir(path):
        raise ValueError(f"{path!r} is a folder; give a file name.")
    if kind == "folder" and os.path.exists(path) and not os.path.isdir(path):
        raise ValueError(f"{path!r} exists and is not a folder.")
    ancestor = os.path.dirname(path)
    while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(
            f"Cannot write to {path!r}: {ancestor!r} is a file, not a folder; "
            "choose another location."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(
            f"Cannot write to {path!r}: no write permission on {ancestor!r}; "
            "choose a writable location."
        )
    return path


@contextlib.contextmanager
def atomic_path(path, make_folders=False):
    """Yields a temporary path beside `path` (with its ending), renamed to
    `path` on success.

    Args:
        path: the destination file.
        make_folders: create the missing folders; otherwise they must exist.

    Yields:
        The temporary path to write.

    Example:
    >>> with atomic_path("codes.npy") as temp, open(temp, "wb") as file:
    ...     np.save(file, np.zeros((2, 4), np.uint8))
    >>> np.load("codes.npy").shape
    (2, 4)
    """
    path = check_writable(path, kind="file")
    folder = os.path.dirname(path)
    if not make_folders and not os.path.isdir(folder):
        raise ValueError(f"Folder does not exist: {folder!r}; create it first.")
    with _temporary(path) as temp:
        os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        try:
            yield temp
            _fsync(temp)
            os.replace(temp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.remove(temp)


@contextlib.contextmanager
def atomic_folder(path):
    """Yields a temporary folder beside `path`, moved to `path` on success (a
    previous `path` is renamed aside, then removed, or put back on failure).

    Args:
        path: the folder to create or replace.

    Yields:
        The temporary folder to fill.

    Example:
    >>> with atomic_folder("runs/mnist") as work:
    ...     _ = write_json({"epochs": 15}, os.path.join(work, "run.json"))
    >>> os.listdir("runs/mnist")
    ['run.json']
    """
    path = check_writable(path, kind="folder")
    with _temporary(path) as work:
        os.mkdir(work, 0o777)
        try:
            yield work
            for root, _, names in os.walk(work):
                for name in names:
                    _fsync(os.path.join(root, name))
            old = work + "old"
            if os.path.isdir(path) and os.listdir(path):
                os.replace(path, old)
            try:
                os.replace(work, path)
            except BaseException:
                if os.path.isdir(old):
                    os.replace(old, path)  # the previous folder back
                raise
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def write_json(data, path):
    """Writes `data` as indented JSON (no NaN) atomically, making its folder.

    Returns:
        The path written.

    Example:
    >>> write_json({"bits": 32}, "report.json")
    'report.json'
    """
    with atomic_path(path, make_folders=True) as temp, open(temp, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
    return os.fspath(path)


@contextlib.contextmanager
def _temporary(path):
    """A new temporary name beside `path`; a failure to write (not to read
    an input) becomes a `ValueError` naming `path`."""
    folder = os.path.dirname(path)
    temp = os.path.join(
        folder, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{os.path.basename(path)}"
    )
    try:
        os.makedirs(folder, exist_ok=True)
        yield temp
    except OSError as error:
        if error.errno not in _WRITE_ERRNOS and error.filename not in (
            None, temp, path, folder):  # fmt: skip
            raise
        raise ValueError(
            f"Cannot write {path!r}: {error.strerror or error}; free some space or "
            "choose a writable location."
        ) from error


def _fsync(path):
    with open(path, "rb") as file:
        os.fsync(file.fileno())

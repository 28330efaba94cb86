"""Atomic writes: an output is replaced whole, or not at all.

Every file is written under a temporary name in its own folder, flushed to
disk (`os.fsync`) and renamed over its final name (`os.replace`, atomic on
POSIX and Windows). A crash, `kill -9` or a full disk at any write leaves the
previous file or nothing, never a truncated one; a failed write removes its
temporary and raises a `ValueError` that names the user's path. Only a kill
can leave a temporary (hidden, `TEMP_PREFIX...`) behind; it is never read.

Temporaries are created with mode 0666/0777 for the OS to apply the umask,
so outputs get an ordinary file's permissions (not `tempfile`'s 0600/0700).

Whether an output may be written at all (no file replaced without
`overwrite`, never an input of the same command) is keras-mlh's guard
`keras_mlh.files.check_output`.
"""

import contextlib
import errno
import json
import os
import secrets
import shutil

TEMP_PREFIX = ".keras-mlh-"
# Errors of the block that are failures to write, not to read an input.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}


def check_writable(path, kind=None):
    """Fails early when `path` cannot be created or replaced; creates nothing.

    Looks at the nearest existing folder above `path`: it must be a folder
    the user may write into. Meant to run before long work.

    Args:
        path: the file or folder to write.
        kind: `"file"` also refuses an existing folder at `path`, `"folder"`
            an existing file; `None` checks only the location.

    Returns:
        The absolute path.

    Raises:
        ValueError: when `path` cannot be written, saying why.
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
    """Yields a temporary path beside `path`, renamed to `path` on success.

    The temporary keeps the name's ending (`.keras`, `.png`: writers that go
    by it). After the block it is fsynced, then renamed over `path`; on any
    error it is removed and `path` keeps its previous content.

    Args:
        path: the destination file.
        make_folders: create the missing folders of `path`; otherwise its
            folder must exist.

    Yields:
        The temporary path to write.

    Raises:
        ValueError: when the folder is missing (without `make_folders`),
            `path` is a folder, or writing fails (disk full, ...).

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
    with _naming(path, folder) as temp:
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
    """Yields a temporary folder beside `path`, moved to `path` on success.

    Its files are fsynced, then it is renamed into place. A folder cannot be
    renamed over a non-empty one, so an existing `path` is first renamed
    aside (a hidden `TEMP_PREFIX...old` beside it) and removed after the
    swap; a kill between the two renames leaves it there to recover. On an
    exception the temporary folder is removed and `path` is left as it was.

    Args:
        path: the folder to create or replace; the caller decides whether an
            existing one may be replaced (`keras_mlh.files.check_output`).

    Yields:
        The temporary folder to fill.

    Raises:
        ValueError: when `path` is a file, or writing fails.

    Example:
    >>> with atomic_folder("runs/mnist") as work:
    ...     _ = write_json({"epochs": 15}, os.path.join(work, "run.json"))
    >>> os.listdir("runs/mnist")
    ['run.json']
    """
    path = check_writable(path, kind="folder")
    with _naming(path, os.path.dirname(path)) as work:
        os.mkdir(work, 0o777)
        try:
            yield work
            for root, _, names in os.walk(work):
                for name in names:
                    _fsync(os.path.join(root, name))
            if os.path.isdir(path) and os.listdir(path):
                old = work + "old"
                os.replace(path, old)
                try:
                    os.replace(work, path)
                except BaseException:
                    os.replace(old, path)  # put the previous folder back
                    raise
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(work, path)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def write_json(data, path):
    """Writes `data` as indented JSON to `path` atomically, creating its folder.

    NaN and infinity are refused (they are not JSON); store them as `None`.

    Args:
        data: a JSON-serializable object.
        path: the file to write.

    Returns:
        The path written.

    Raises:
        TypeError: for data that is not JSON-serializable.
        ValueError: for NaN or infinite numbers, or an unwritable location.
    """
    with atomic_path(path, make_folders=True) as temp, open(temp, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
    return os.fspath(path)


@contextlib.contextmanager
def _naming(path, folder):
    """Makes `folder` and yields a new temporary name in it for `path`;
    a failure to write becomes a `ValueError` that names `path`."""
    temp = os.path.join(
        folder, f"{TEMP_PREFIX}{secrets.token_hex(4)}-{os.path.basename(path)}"
    )
    try:
        os.makedirs(folder, exist_ok=True)
        yield temp
    except OSError as error:
        # Ours (the temporary, the rename) or a full disk; not an input's.
        if error.errno not in _WRITE_ERRNOS and error.filename not in (
            None,
            temp,
            path,
            folder,
        ):
            raise
        raise ValueError(
            f"Cannot write {path!r}: {error.strerror or error}; free some space or "
            "choose a writable location."
        ) from error


def _fsync(path):
    """Flushes a written file to disk: the rename must never come first."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)

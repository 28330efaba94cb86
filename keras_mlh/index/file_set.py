"""The files of a saved index, written and read as one matched set.

An index saved at `PATH` is the faiss file `PATH`, its JSON sidecar
`PATH.json` (format version, parameters, item count and the size and sha256
of every companion file), the optional id -> path map `PATH.paths.json`, and
the empty lock file `PATH.lock`.

Writers take an exclusive `fcntl.flock` on the lock file for the whole save,
so saves of one path never interleave; readers take a shared one when the
lock file exists, so they never read half of a save. The kernel drops a
flock when its process dies (even by `kill -9`), so a crashed writer never
wedges later ones; the lock file itself stays (removing it would let two
writers hold locks on two different files). Readers that cannot lock (no
lock file yet, or a file system without flock) still verify every companion
against the sidecar's checksums: a mixed set is refused, never loaded.
Where there is no `fcntl` (Windows), nothing is locked: concurrent saves of
one path are then the caller's to avoid, and loads rely on the checksums.
"""

import contextlib
import hashlib
import os

try:
    import fcntl
except ImportError:  # Windows: no flock; readers still verify the checksums
    fcntl = None

SIDECAR_SUFFIX = ".json"
PATHS_SUFFIX = ".paths.json"
LOCK_SUFFIX = ".lock"


def index_files(path):
    """Every file that belongs to the index saved at `path`.

    Whether or not each exists: the guards that keep a command from writing
    over an index it reads need all the names an index may use.

    Args:
        path: the index file (the faiss file `HammingIndex.save` wrote).

    Returns:
        A tuple of absolute paths: the index, its sidecar, its paths file and
        its lock file.

    Example:
    >>> index_files("db.index")  # doctest: +SKIP
    ('/work/db.index', '/work/db.index.json', '/work/db.index.paths.json',
     '/work/db.index.lock')
    """
    path = os.path.abspath(os.fspath(path))
    return (
        path,
        path + SIDECAR_SUFFIX,
        path + PATHS_SUFFIX,
        path + LOCK_SUFFIX,
    )


def file_record(path):
    """`{"bytes": size, "sha256": hex digest}` of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def bytes_record(data):
    """`file_record` of bytes already in memory."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@contextlib.contextmanager
def writer_lock(path):
    """Holds the exclusive lock of the index at `path` (made if missing).

    Args:
        path: the index file.

    Raises:
        ValueError: when the lock file cannot be created.
    """
    lock = index_files(path)[3]
    try:
        handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise ValueError(
            f"Cannot write the index {path!r}: cannot create its lock file "
            f"{lock!r} ({error.strerror or error}); choose a writable location."
        ) from None
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


@contextlib.contextmanager
def reader_lock(path):
    """Holds a shared lock of the index at `path` when there is a lock file.

    Best effort: without a lock file (an index copied without it, a
    read-only folder) or flock support, nothing is locked and the reader
    relies on the sidecar's checksums alone.
    """
    try:
        handle = os.open(index_files(path)[3], os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle, fcntl.LOCK_SH)
        yield
    finally:
        os.close(handle)

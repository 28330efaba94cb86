"""The files of a saved index, written and read as one matched set.

An index saved at `PATH` is the faiss file `PATH`, its JSON sidecar
`PATH.json` (format version, parameters, item count and the size and sha256
of every companion file), the optional id -> path map `PATH.paths.json`, and
the empty lock file `PATH.lock`.

Writers take an exclusive `fcntl.flock` on the lock file for the whole save,
so saves of one path never interleave; readers take a shared one when the
lock file exists, so they never read half of a save. The kernel drops a
flock when its process dies (even by `kill -9`), so a crashed writer never
wedges later ones. The writer removes the lock file at the end of its save
while still holding it; whoever then gets a lock checks that it holds the
file now at that name, and starts over otherwise, so two writers never hold
locks on two different files. Readers that find no lock file (or a file
system without flock) still verify every companion against the sidecar's
checksums: a mixed set is refused, never loaded.
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
    with open(path, "rb") as f:
        return stream_record(f)


def stream_record(f):
    """`file_record` of an open binary file, from its position to its end."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: f.read(1 << 20), b""):
        digest.update(chunk)
        size += len(chunk)
    return {"bytes": size, "sha256": digest.hexdigest()}


def bytes_record(data):
    """`file_record` of bytes already in memory."""
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@contextlib.contextmanager
def writer_lock(path):
    """Holds the exclusive lock of the index at `path` for one save.

    The lock file is made if missing and removed again at the end (also
    when the save fails), while still locked, so no lock file outlives a
    save; one left by a killed writer is taken over and removed by the next.

    Args:
        path: the index file.

    Raises:
        ValueError: when the lock file cannot be created.
    """
    lock = index_files(path)[3]
    handle = _locked(lock, exclusive=True)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.remove(lock)  # still locked: see _locked
        os.close(handle)  # closing releases the lock


@contextlib.contextmanager
def reader_lock(path):
    """Holds a shared lock of the index at `path` while a save holds one.

    Without a lock file no save is running (or flock is unsupported), and
    nothing is locked: the reader relies on the sidecar's checksums alone,
    which also covers a save that starts while it reads.
    """
    try:
        handle = _locked(index_files(path)[3], exclusive=False)
    except (FileNotFoundError, ValueError):
        yield
        return
    try:
        yield
    finally:
        os.close(handle)


def _locked(lock, exclusive):
    """An open, flocked descriptor of the file that is `lock` now.

    Writers remove the lock file while holding it, so a lock taken on a file
    already removed (or replaced) guards nothing: take it again on the file
    now at that name.
    """
    while True:
        try:
            if exclusive:
                handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            else:
                handle = os.open(lock, os.O_RDONLY)
        except OSError as error:
            if not exclusive and isinstance(error, FileNotFoundError):
                raise  # no save is running
            raise ValueError(
                f"Cannot lock the index: cannot open its lock file {lock!r} "
                f"({error.strerror or error}); choose a writable location."
            ) from None
        if fcntl is None:
            return handle
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        except OSError:
            return handle  # no flock on this file system: checksums only
        try:
            same = os.stat(lock).st_ino == os.fstat(handle).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        os.close(handle)
        if not exclusive and not os.path.exists(lock):
            raise FileNotFoundError(lock)

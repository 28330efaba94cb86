"""Atomic writes: a crash never leaves a truncated file or half-made folder.

Everything is first written under a temporary name (`TEMP_PREFIX`) in the
destination's own folder and renamed into place at the end, so the rename is
atomic and a failure leaves the previous content, or nothing. The serving
side (`HammingIndex.save`) and keras-mlh (`retrieval_report`,
`export_encoder`, the `keras-mlh` command line) write through these helpers.

Folders that a write has to create are removed again when it fails, and the
final files and folders get the permissions the umask gives ordinary ones
(not the private 0600/0700 of `tempfile`): temporaries are created with
mode 0666/0777 for the OS to apply the umask, which is never changed (a
process-wide setting that other threads would see). Failures to write (disk full,
file too large, no permission), from the OS or from the library writing
(Keras, TensorFlow, faiss), are reported as `ValueError`s that name the
user's path, never the temporary one, and what to do.

Temporary names follow one rule, `.keras-mlh-tmp-HOST-PID-RANDOM` (`HOST` a
hash of the machine's name and process-id namespace, `PID` the writing
process): a temporary file or
folder whose process is gone (`kill -9`, power loss) is stale, and the next
write into the same folder removes it and says so on stderr. Nothing else is
ever removed: not a name of another machine, of a running process, or of
another rule.

The guard that decides whether an output may be written at all (no
existing file replaced without `overwrite`, never an input of the same
command) is keras-mlh's: `keras_mlh.files.check_output`.
"""

import contextlib
import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys

TEMP_PREFIX = ".keras-mlh-"
TEMP_TAG = "tmp"
# Errors of writing that the user can fix by freeing space or choosing a place.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS}
_WRITE_REASONS = {
    "no space left on device": "No space left on device",
    "file too large": "File too large",
    "disk quota exceeded": "Disk quota exceeded",
    "read-only file system": "Read-only file system",
    "permission denied": "Permission denied",
}


def check_writable(path, kind=None):
    """Fails early when `path` cannot be created or replaced; creates nothing.

    Looks at the nearest existing folder above `path`: it must be a folder
    (not a file) that the user may write into. Meant to run before long work
    (loading a model, training), so that a bad output location fails fast.

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


def remove_stale_temps(folder):
    """Removes the temporary files and folders of dead keras-mlh processes.

    Only names of `temp_name`'s rule made on this machine by a process that
    no longer runs are removed; each removal is reported on one stderr line.

    Args:
        folder: the folder to clean; a missing one is skipped.

    Returns:
        The names removed.
    """
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed = []
    pattern = re.compile(re.escape(TEMP_PREFIX + TEMP_TAG) + r"-([0-9a-f]{8})-(\d+)-")
    for name in names:
        match = pattern.match(name)
        if not match or match[1] != host_id():
            continue
        pid = int(match[2])
        # A pid no process can have is not a name of ours (and os.kill
        # would overflow on it).
        if not 0 < pid < 2**31 or process_runs(pid):
            continue
        full = os.path.join(folder, name)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full)
            else:
                os.remove(full)
        except OSError:
            continue
        removed.append(name)
    if removed:
        print(
            f"keras-mlh: removed {len(removed)} stale temporary "
            f"{'entry' if len(removed) == 1 else 'entries'} left in {folder!r} by "
            f"an interrupted command: {', '.join(sorted(removed))}",
            file=sys.stderr,
        )
    return removed


def temp_name(tag=TEMP_TAG):
    """The prefix of a temporary name of this process: `.keras-mlh-TAG-HOST-PID-`.

    Args:
        tag: `"tmp"` for the names `remove_stale_temps` may remove.

    Returns:
        The prefix; `make_temp` adds a random part.
    """
    return f"{TEMP_PREFIX}{tag}-{host_id()}-{os.getpid()}-"


@contextlib.contextmanager
def ensure_folder(folder):
    """Makes `folder` and its missing parents; removes them if the block fails.

    Only the folders made here are removed, and only while still empty, so
    a failed write leaves the tree as it found it.

    Args:
        folder: the folder to make; it may exist already.

    Yields:
        The absolute path of `folder`.

    Raises:
        ValueError: when the folder cannot be made.
    """
    folder = check_writable(folder, kind="folder")
    created = []
    path = folder
    while not os.path.exists(path) and os.path.dirname(path) != path:
        created.append(path)  # deepest first, the order to remove them in
        path = os.path.dirname(path)
    done = False
    try:
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise _cannot_write(folder, error) from None
        yield folder
        done = True
    finally:
        if not done:
            for path in created:
                with contextlib.suppress(OSError):
                    os.rmdir(path)  # fails, as it should, once not empty


@contextlib.contextmanager
def atomic_path(path, make_folders=False):
    """Yields a temporary path beside `path`, renamed to `path` on success.

    The temporary file lives in the same folder, so the final `os.replace` is
    atomic; on an exception it is removed and `path` keeps its old content.
    It is made on entry: an unwritable location fails before the block runs.

    Args:
        path: the destination file.
        make_folders: create the missing folders of `path` (removed again if
            the block fails); otherwise its folder must exist.

    Yields:
        The temporary path to write.

    Raises:
        ValueError: when the folder is missing (without `make_folders`),
            `path` is a folder, or the location cannot be written.

    Example:
    >>> codes = np.zeros((2, 4), np.uint8)
    >>> with atomic_path("codes.npy") as temp, open(temp, "wb") as file:
    ...     np.save(file, codes)
    >>> np.load("codes.npy").shape
    (2, 4)
    """
    path = check_writable(path, kind="file")
    folder = os.path.dirname(path)
    if not make_folders and not os.path.isdir(folder):
        raise ValueError(f"Folder does not exist: {folder!r}; create it first.")
    with ensure_folder(folder) if make_folders else contextlib.nullcontext():
        temp = _temp_file(folder)
        try:
            with naming(path, {temp: path}):
                yield temp
                os.replace(temp, path)
        finally:
            if os.path.exists(temp):
                os.remove(temp)


@contextlib.contextmanager
def staged_files(folder):
    """Writes several files into `folder` as one: all of them, or none.

    Each file is staged under a temporary name in `folder` and all are
    renamed into place, in the order they were staged, once the block
    completes; if it fails, none is, and `folder` is removed again when this
    made it. Stage a summary file last: when it is there, so are the rest.

    Args:
        folder: the folder to write into; made (with its parents) if missing.

    Yields:
        `stage(name) -> str`: the temporary path to write the file `name`
        (a name inside `folder`) to.

    Raises:
        ValueError: when `folder` is a file or cannot be written.

    Example:
    >>> with staged_files("eval") as stage:
    ...     _ = write_json({"map": 0.9}, stage("report.json"))
    ...     _ = write_json({"bits": 32}, stage("bits.json"))
    >>> sorted(os.listdir("eval"))
    ['bits.json', 'report.json']
    """
    folder = os.path.abspath(os.fspath(folder))
    staged = {}
    written = {}  # temporary -> final path, for error messages

    def stage(name):
        staged[name] = _temp_file(folder, suffix=os.path.splitext(name)[1])
        written[staged[name]] = os.path.join(folder, name)
        return staged[name]

    with ensure_folder(folder):
        try:
            with naming(folder, written):
                yield stage
                for name, temp in staged.items():
                    os.replace(temp, os.path.join(folder, name))
        finally:
            for temp in staged.values():
                if os.path.exists(temp):
                    os.remove(temp)


@contextlib.contextmanager
def atomic_folder(path):
    """Yields a temporary folder beside `path`, moved to `path` on success.

    An existing folder at `path` is replaced only once the block has
    completed; on an exception the temporary folder (and any parent folder
    made for it) is removed and `path` is left as it was.

    Args:
        path: the folder to create or replace; the caller decides whether an
            existing one may be replaced.

    Yields:
        The temporary folder to fill.

    Raises:
        ValueError: when `path` is a file or its location cannot be written.

    Example:
    >>> with atomic_folder("runs/mnist") as work:
    ...     _ = write_json({"epochs": 15}, os.path.join(work, "run.json"))
    >>> os.listdir("runs/mnist")
    ['run.json']
    """
    path = check_writable(path, kind="folder")
    with ensure_folder(os.path.dirname(path)) as parent:
        remove_stale_temps(parent)
        try:
            work = make_temp(parent, folder=True)
        except OSError as error:
            raise _cannot_write(path, error) from None
        try:
            with naming(path, {work: path}):
                yield work
                _move_into_place(work, path)
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


def make_temp(parent, suffix="", folder=False, tag=TEMP_TAG):
    """Creates a new temporary file or folder of `temp_name`'s rule in `parent`.

    Unlike `tempfile` (0600 files, 0700 folders), it gets the mode an
    ordinary file or folder gets: created with 0666 or 0777, the OS applies
    the umask (or the folder's default ACL). Reading the umask would mean
    setting it, for every thread of the process.

    Args:
        parent: the existing folder to create it in.
        suffix: the end of the name (`".h5"`: writers that go by it).
        folder: a folder instead of an empty file.
        tag: `temp_name`'s tag; only `"tmp"` names are swept when stale.

    Returns:
        The path created.

    Raises:
        OSError: when it cannot be created.
    """
    prefix = os.path.join(parent, temp_name(tag))
    while True:
        temp = f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            if folder:
                os.mkdir(temp, 0o777)
            else:
                os.close(os.open(temp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return temp
        except FileExistsError:
            continue  # a name taken by this very process: draw again


# --------------------------------------------------------------- helpers
def _cannot_write(path, error):
    return ValueError(
        f"Cannot write to {path!r}: {error.strerror or error}; choose a writable "
        "location."
    )


def _temp_file(folder, suffix=""):
    remove_stale_temps(folder)
    try:
        return make_temp(folder, suffix=suffix)
    except OSError as error:
        raise _cannot_write(folder, error) from None


def _move_into_place(work, path):
    if not os.path.isdir(path):
        os.replace(work, path)
        return
    # Swap through a trash folder: rename cannot replace a non-empty folder.
    # Not of the swept rule: a kill between the two renames leaves the
    # previous folder in it, for the user to recover, never to the sweep.
    trash = make_temp(os.path.dirname(path), folder=True, tag="old")
    old = os.path.join(trash, "old")
    try:
        os.replace(path, old)
        try:
            os.replace(work, path)
        except BaseException:
            os.replace(old, path)  # put the previous folder back
            raise
    finally:
        shutil.rmtree(trash, ignore_errors=True)


@contextlib.contextmanager
def naming(path, temps):
    """Re-raises a failure to write as a `ValueError` that names the user's path.

    Disk-full, file-too-large and permission errors from the OS, or from a
    library writing (Keras, TensorFlow, h5py and faiss raise their own types
    and quote the temporary name), become `Cannot write PATH: REASON; ...`.
    Other errors, and failures to read an input, pass unchanged.

    Args:
        path: the user's output path, named when no better one is known.
        temps: a mapping (read when an error happens) of each temporary file
            or folder to the path it stands for; a name inside a temporary
            folder is shown inside that path (`run/model.keras`).

    Yields:
        Nothing; wrap the writing.

    Example:
    >>> with naming("codes.npy", {temp: "codes.npy"}):  # doctest: +SKIP
    ...     np.save(temp, codes)
    """
    try:
        yield
    except Exception as error:
        translated = _write_error(error, path, temps)
        if translated is None:
            raise
        raise translated from error


def _write_error(error, path, temps):
    """The `ValueError` naming the user's path for a failed write, or `None`."""
    if isinstance(error, ValueError):
        return None
    temps = dict(temps)
    text = str(error)
    reason = None
    if isinstance(error, OSError):
        mine = error.filename is None or any(
            _under(os.fspath(error.filename), t) for t in temps
        )
        if error.errno in _WRITE_ERRNOS or (
            mine and error.errno in (errno.EACCES, errno.EPERM)
        ):
            # The OS's words: libraries (h5py) put pages of their own here.
            reason = os.strerror(error.errno)
    if reason is None:
        lowered = text.lower()
        quoted = isinstance(error, OSError) or any(t in text for t in temps)
        reason = next(
            (v for k, v in _WRITE_REASONS.items() if k in lowered and quoted), None
        )
    if reason is None:
        return None
    target = _user_name(error, text, temps) or path
    return ValueError(
        f"Cannot write {target!r}: {reason}; free some space or choose a writable "
        "location."
    )


def _user_name(error, text, temps):
    """The user's path for the temporary name the error quotes, or `None`."""
    filename = getattr(error, "filename", None)
    names = [os.fspath(filename)] if filename is not None else []
    names += [word.strip("'\"(),:;[]") for word in text.split()]
    for name in names:
        for temp, final in temps.items():
            if name == temp:
                return final
            if name.startswith(temp + os.sep):
                # The entry of the user's folder: below it, writers such as
                # TensorFlow use temporary names of their own.
                entry = os.path.relpath(name, temp).split(os.sep)[0]
                return os.path.join(final, entry)
    return None


def _under(path, folder):
    return os.path.realpath(path) == os.path.realpath(folder) or is_inside(path, folder)


def is_inside(path, folder):
    """Whether `path` lies inside `folder` (real paths), not being it."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path != folder and path.startswith(folder.rstrip(os.sep) + os.sep)


def host_id():
    """8 hex digits naming this machine and process-id namespace.

    The namespace counts too: a container sharing the folder and the host
    name sees other process ids, and must not take a live writer for dead.

    Returns:
        The digits; equal in every process that sees the same process ids.
    """
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        namespace = 0
    name = f"{socket.gethostname()}:{namespace}".encode()
    return hashlib.sha1(name).hexdigest()[:8]


def process_runs(pid):
    """Whether process `pid` runs on this machine (any user's).

    Args:
        pid: the process id.

    Returns:
        `False` only when no such process exists.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # it exists, under another user
    return True

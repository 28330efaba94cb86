"""Atomic writes: a crash never leaves a truncated file or half-made folder.

Everything is first written under a temporary name (`TEMP_PREFIX`) in the
destination's own folder and renamed into place at the end, so the rename is
atomic and a failure leaves the previous content, or nothing. The library
(`HammingIndex.save`, `retrieval_report`, `export_encoder`) and the
`keras-mlh` command line write through these helpers.

Folders that a write has to create are removed again when it fails, and the
final files and folders get the permissions the umask gives ordinary ones
(not the private 0600/0700 of `tempfile`). Failures to write are reported
as `ValueError`s that name the path and what to do.
"""

import contextlib
import json
import os
import shutil
import tempfile

TEMP_PREFIX = ".keras-mlh-"


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


def check_replaceable_folder(path, overwrite, marker, what, overwrite_flag):
    """Checks that `path` may become (or replace) one of our output folders.

    An empty or missing folder is fine. A non-empty one is replaced only
    with `overwrite`, and only when it holds `marker` (the file that every
    such folder of ours has): replacing deletes the old folder, so it must
    never be a folder of the user's own. Creates nothing.

    Args:
        path: the output folder.
        overwrite: whether an earlier output folder may be replaced.
        marker: file name that marks a folder this package wrote.
        what: what the folder is, for messages (e.g. `"export"`).
        overwrite_flag: how the caller spells `overwrite`, for messages.

    Returns:
        The absolute path.

    Raises:
        ValueError: when `path` is a file, cannot be written, or is a
            non-empty folder that may not be replaced.
    """
    path = check_writable(path, kind="folder")
    if os.path.isdir(path) and os.listdir(path):
        if not overwrite:
            raise ValueError(
                f"{path!r} is not empty; choose a new folder or pass "
                f"{overwrite_flag} to replace an earlier {what}."
            )
        if not os.path.isfile(os.path.join(path, marker)):
            raise ValueError(
                f"Refusing to replace {path!r}: it is not a keras-mlh {what} (no "
                f"{marker}), and replacing deletes it. Choose a new folder."
            )
    return path


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
    >>> with atomic_path("codes.npy") as temp:
    ...     np.save(open(temp, "wb"), codes)
    """
    path = check_writable(path, kind="file")
    folder = os.path.dirname(path)
    if not make_folders and not os.path.isdir(folder):
        raise ValueError(f"Folder does not exist: {folder!r}; create it first.")
    with ensure_folder(folder) if make_folders else contextlib.nullcontext():
        temp = _temp_file(folder)
        try:
            yield temp
            _publish(temp, path)
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
    ...     plot_pr_curve(curve, stage("pr_curve.png"))
    ...     write_json(report, stage("report.json"))
    """
    folder = os.path.abspath(os.fspath(folder))
    staged = {}

    def stage(name):
        staged[name] = _temp_file(folder, suffix=os.path.splitext(name)[1])
        return staged[name]

    with ensure_folder(folder):
        try:
            yield stage
            for name, temp in staged.items():
                _publish(temp, os.path.join(folder, name))
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
    ...     model.save(os.path.join(work, "model.keras"))
    """
    path = check_writable(path, kind="folder")
    with ensure_folder(os.path.dirname(path)) as parent:
        try:
            work = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent)
        except OSError as error:
            raise _cannot_write(path, error) from None
        try:
            yield work
            os.chmod(work, 0o777 & ~_umask())
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


# --------------------------------------------------------------- helpers
def _umask():
    mask = os.umask(0)  # the only way to read it is to set it
    os.umask(mask)
    return mask


def _cannot_write(path, error):
    return ValueError(
        f"Cannot write to {path!r}: {error.strerror or error}; choose a writable "
        "location."
    )


def _temp_file(folder, suffix=""):
    try:
        handle, temp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=suffix)
    except OSError as error:
        raise _cannot_write(folder, error) from None
    os.close(handle)
    return temp


def _publish(temp, path):
    os.chmod(temp, 0o666 & ~_umask())
    os.replace(temp, path)


def _move_into_place(work, path):
    if not os.path.isdir(path):
        os.replace(work, path)
        return
    # Swap through a trash folder: rename cannot replace a non-empty folder.
    trash = tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=os.path.dirname(path))
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

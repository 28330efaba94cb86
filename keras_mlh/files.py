"""The guard of every output (`check_output`) and of model files; the atomic
writes of `keras_mlh_runtime.files`, re-exported."""

import contextlib
import os
import zipfile

from keras_mlh_runtime.files import TEMP_PREFIX as TEMP_PREFIX
from keras_mlh_runtime.files import atomic_folder as atomic_folder
from keras_mlh_runtime.files import atomic_path as atomic_path
from keras_mlh_runtime.files import check_writable as check_writable
from keras_mlh_runtime.files import write_json as write_json


def check_model_file(path, fix="save the model with model.save('model.keras')"):
    """`path` as a string, checked to be a `.keras` (zip) file; `fix` ends errors."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"Model file {path!r} is a folder, not a file; {fix}.")
    if not os.path.isfile(path):
        raise ValueError(f"Model file not found: {path!r}; {fix}.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a Keras model file (.keras zip archive); {fix}."
        )
    return path


def check_output(path, inputs=(), overwrite=False, kind="file", companions=(),
                 marker=None, what="output", overwrite_flag="--overwrite",
                 not_inside=()):  # fmt: skip
    """Checks, creating nothing, that writing the output `path` loses nothing.

    No output is (even with `overwrite`) one of the `inputs` by real path, or
    lies inside a `not_inside` folder, and no output folder holds an input. An
    existing output is replaced only with `overwrite`; a folder only when empty
    or holding `marker`, the file each of ours has (another is the user's).

    Args:
        inputs: the paths the command reads (`None` entries skipped).
        kind: `"file"` or `"folder"`.
        companions: further files written with `path`.
        what, overwrite_flag: the output and its overwrite option, for messages.

    Returns:
        The absolute path.

    Example:
    >>> check_output("codes.npz", inputs=["model.keras", "images.npy"])
    '/.../codes.npz'
    """
    path = os.path.abspath(os.fspath(path))
    outputs = [path, *(os.path.abspath(os.fspath(c)) for c in companions)]
    for source in (os.fspath(i) for i in inputs if i is not None):
        for output in (o for o in outputs if _same_file(o, source)):
            raise ValueError(
                f"Refusing to write {output!r}: it is an input of this command "
                f"({source!r}), and writing it would destroy it. Choose "
                "another output."
            )
        if kind == "folder" and _is_inside(source, path):
            raise ValueError(
                f"Refusing to write {path!r}: it holds {source!r}, an input of "
                "this command, which replacing the folder would delete. Choose "
                "another output folder, or move the input out of it."
            )
    for folder in (os.fspath(f) for f in not_inside if f is not None):
        if _is_inside(path, folder):
            raise ValueError(
                f"Refusing to write {path!r} inside {folder!r}, an input folder of "
                "this command; choose an output outside it."
            )
    if kind == "folder":
        path = check_writable(path, kind="folder")
        full = os.path.isdir(path) and os.listdir(path)
        if full and not overwrite:
            raise ValueError(
                f"{path!r} is not empty; choose a new folder or pass "
                f"{overwrite_flag} to replace an earlier {what}."
            )
        if full and not os.path.isfile(os.path.join(path, marker)):
            raise ValueError(
                f"Refusing to replace {path!r}: it is not a keras-mlh {what} "
                f"(no {marker}), and replacing deletes it. Choose a new folder."
            )
        return path
    for output in outputs:
        check_writable(output, kind="file")
        if os.path.exists(output) and not os.path.isfile(output):
            # A device or pipe (/dev/null, a fifo): the rename would replace it.
            raise ValueError(
                f"{output!r} is not a regular file; give the name of a file to write."
            )
        if os.path.lexists(output) and not overwrite:  # a dangling link too
            raise ValueError(
                f"{output!r} exists; pass {overwrite_flag} to replace it, or "
                "choose another name."
            )
    return path


def _same_file(a, b):  # by real path, or inode (hard links)
    with contextlib.suppress(OSError):  # either missing
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def _is_inside(path, folder):  # real paths, `folder` itself excluded
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path.startswith(folder.rstrip(os.sep) + os.sep)

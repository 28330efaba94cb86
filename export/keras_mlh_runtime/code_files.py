"""Codes files: an `.npy` of packed uint8 codes, or an `.npz` of `codes`
(packed or ±1), `bits` and, one per code, `ids`, `paths` and `labels`.

Example:
>>> save_codes("codes.npz", np.array([[1, -1] * 8], np.int8), bits=16)
>>> packed, ids, paths, bits = load_codes("codes.npz")
>>> packed.shape, ids.tolist(), bits
((1, 2), [0], 16)
"""

import os

import numpy as np

from keras_mlh_runtime.codes import to_packed
from keras_mlh_runtime.errors import first_line

IMAGE_KEYS = ("images", "x", "x_query")


def load_npy(path, what, archive=False):
    """The array of an `.npy` file (all arrays of an `.npz` as a dict, with
    `archive`), read without pickles; `what` names the file in messages."""
    _require_file(path, what)
    try:
        data = np.load(path, allow_pickle=False)
        if not archive:
            return data
        with data:
            return {key: data[key] for key in data.files}
    except Exception as error:
        kind = "numpy .npz archive" if archive else "numpy .npy array"
        raise ValueError(
            f"Cannot read {what} {path!r} as a {kind}: {first_line(error)}"
        ) from None


def load_npz(path, what):
    """All arrays of an `.npz` file as a dict (see `load_npy`).

    Example:
    >>> np.savez("data.npz", images=np.zeros((2, 4)))
    >>> sorted(load_npz("data.npz", "Data file"))
    ['images']
    """
    return load_npy(path, what, archive=True)


def pick(arrays, keys, path, fix):
    """The first of `keys` present in `arrays` (a file's arrays by name);
    else a `ValueError` naming `path` and ending with `fix`."""
    for key in keys:
        if key in arrays:
            return key
    raise ValueError(
        f"{path!r} has the arrays {sorted(arrays) or 'none'} but needs "
        f"{' or '.join(repr(k) for k in keys)}; {fix}"
    )


def check_ids(ids, count, path, per):
    """`ids` from the file `path` as int64, one per `per` ("image", "code")."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu" or ids.shape != (count,):
        raise ValueError(
            f"`ids` in {path!r} must be {count} integers, one per {per}. "
            f"Received: shape={ids.shape}, dtype={ids.dtype}"
        )
    return ids.astype(np.int64)


def save_codes(path, codes, bits=None, ids=None, paths=None, labels=None):
    """Writes a codes file to exactly `path` (numpy would add a suffix).

    Args:
        path: the file (`.npy`: the packed codes only).
        codes: the codes in any form (`codes.to_packed`).
        bits: the code length.
        ids: int64 ids, one per code; `None` numbers them 0..n-1.
        paths, labels: one per code each, or `None`.
    """
    packed = to_packed(codes, bits)
    with open(path, "wb") as f:
        if str(path).lower().endswith(".npy"):
            np.save(f, packed, allow_pickle=False)
        else:
            ids = np.arange(len(packed)) if ids is None else ids
            write_npz_codes(f, packed, ids=ids, paths=paths, labels=labels)


def write_npz_codes(f, packed, ids=None, paths=None, labels=None):
    """Writes packed codes, and `ids`, `paths`, `labels` unless `None`, as an
    `.npz` to a binary file object (also a Beam file system's)."""
    extra = {k: v for k, v in (("paths", paths), ("labels", labels)) if v is not None}
    if ids is not None:
        extra["ids"] = np.asarray(ids).astype(np.int64)
    np.savez_compressed(f, codes=packed, bits=np.int64(packed.shape[1] * 8), **extra)


def load_codes(path, what="Codes file"):
    """Packed codes with their ids and paths from a codes file.

    Args:
        path: an `.npy` or `.npz` codes file.
        what: what the file is, for messages.

    Returns:
        `(packed, ids, paths, bits)`: uint8 codes `(n, bits / 8)`, int64 ids
        or `None`, paths or `None`, and the code length.
    """
    ids = paths = bits = None
    if path.lower().endswith(".npy"):
        codes = load_npy(path, what)
    elif path.lower().endswith(".npz"):
        arrays = load_npz(path, what)
        codes = arrays[
            pick(arrays, ("codes",), path, "make one with `keras-mlh encode`.")
        ]
        ids, paths = arrays.get("ids"), arrays.get("paths")
        bits = int(arrays["bits"]) if "bits" in arrays else None
    else:
        _require_file(path, what)
        raise ValueError(
            f"{what} must be an .npy or .npz file from `keras-mlh encode`; got {path!r}."
        )
    packed = to_packed(codes, bits, name=f"codes of {path}")
    if ids is not None:
        ids = check_ids(ids, len(packed), path, "code")
    if paths is not None and len(paths) != len(packed):
        paths = None
    return packed, ids, paths, packed.shape[1] * 8


def load_code_files(files, what="Codes file"):
    """The codes of one or several codes files (e.g. Beam's shards), in order.

    Args:
        files: the files (see `load_codes`), each given once.
        what: what the files are, for messages.

    Returns:
        `(packed, ids, paths, bits)` as `load_codes`; ids or paths are `None`
        unless every file has them.
    """
    if len(files) == 1:
        return load_codes(files[0], what)
    real = [os.path.realpath(file) for file in files]
    for file, path in zip(files, real, strict=True):
        if real.count(path) > 1:
            raise ValueError(
                f"{file!r} is given twice: its codes would be indexed twice; give "
                "each codes file once."
            )
    parts = [load_codes(file, what) for file in files]
    if len({bits for *_, bits in parts}) > 1:
        found = ", ".join(f"{f!r}: {p[3]}" for f, p in zip(files, parts, strict=True))
        raise ValueError(
            f"The codes files hold codes of different lengths ({found} bits); "
            "encode them all with the same model."
        )
    lacking = {
        1: "has no `ids` but other codes files do; give every file ids, or none "
        "(the index then numbers the codes in order).",
        2: "has no image `paths` (one per code) but other codes files do: the "
        "index would lose them all; encode every file from image files, or "
        "index the files without paths separately.",
    }
    joined = [np.concatenate([part[0] for part in parts]), None, None, parts[0][3]]
    for field, message in lacking.items():
        given = [part[field] is not None for part in parts]
        if any(given) and not all(given):
            raise ValueError(f"{files[given.index(False)]!r} {message}")
        if all(given):
            joined[field] = np.concatenate([part[field] for part in parts])
    if joined[2] is not None:
        unique, counts = np.unique(joined[2], return_counts=True)
        if counts.max() > 1:
            raise ValueError(
                f"The image {str(unique[counts.argmax()])!r} is in several codes "
                "files (shards of two runs over the same images?); give the "
                "shards of one run."
            )
    return tuple(joined)


def _require_file(path, what):
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder, not a file.")
    if not os.path.isfile(path):
        raise ValueError(f"{what} not found: {path!r}.")

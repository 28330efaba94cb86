"""Codes files: packed codes with their ids, paths, labels and code length.

The format written by `keras-mlh encode` (`keras_mlh.encoding`) and, as
shards, by `keras_mlh_runtime.beam_encode`, and read by `keras-mlh index
build`. An `.npy` holds the packed uint8 codes `(n, bits / 8)` only; an
`.npz` holds `codes` (packed uint8, or ±1 codes), and optionally `ids`
(int64, one per code), `bits`, `paths` (the image files, one per code) and
`labels`. numpy only; arrays are read without pickles.

Example:
>>> import os, tempfile
>>> path = os.path.join(tempfile.mkdtemp(), "codes.npz")
>>> save_codes(path, np.array([[1, -1] * 8], np.int8), bits=16)
>>> packed, ids, paths, bits = load_codes(path)
>>> packed.shape, ids.tolist(), bits
((1, 2), [0], 16)
"""

import os

import numpy as np

from keras_mlh_runtime.codes import to_packed
from keras_mlh_runtime.errors import first_line

# The names an images file stores its images under (`x_query`: a run's split).
IMAGE_KEYS = ("images", "x", "x_query")


def require_file(path, what, hint=""):
    """Raises a `ValueError` unless `path` is an existing file.

    Args:
        path: the path to check.
        what: what the file is, for the message (e.g. "Codes file").
        hint: a sentence appended to the message.
    """
    if os.path.isdir(path):
        raise ValueError(f"{what} {path!r} is a folder, not a file.{hint}")
    if not os.path.isfile(path):
        raise ValueError(f"{what} not found: {path!r}.{hint}")


def load_npz(path, what):
    """All arrays of an `.npz` file, read without pickles.

    Args:
        path: the `.npz` file.
        what: what the file is, for messages.

    Returns:
        A dict of name -> array.
    """
    require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:
        raise ValueError(
            f"Cannot read {what} {path!r} as a numpy .npz archive: {first_line(error)}"
        ) from None


def load_npy(path, what):
    """The array of an `.npy` file, read without pickles.

    Args:
        path: the `.npy` file.
        what: what the file is, for messages.

    Returns:
        The array.
    """
    require_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:
        raise ValueError(
            f"Cannot read {what} {path!r} as a numpy .npy array: {first_line(error)}"
        ) from None


def pick(arrays, keys, path, fix):
    """The first of `keys` present in `arrays`.

    Args:
        arrays: the arrays of a file, name -> array.
        keys: the accepted names, preferred first.
        path: the file, for the message.
        fix: what to do when none is there, for the message.

    Returns:
        The key found.
    """
    for key in keys:
        if key in arrays:
            return key
    raise ValueError(
        f"{path!r} has the arrays {sorted(arrays) or 'none'} but needs "
        f"{' or '.join(repr(k) for k in keys)}; {fix}"
    )


def check_ids(ids, count, path, per):
    """`ids` from a file as int64, one per image or code.

    Args:
        ids: the array stored as `ids`.
        count: how many there must be.
        path: the file, for the message.
        per: "image" or "code", for the message.

    Returns:
        int64 array `(count,)`.
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (count,):
        raise ValueError(
            f"`ids` in {path!r} must be {count} integers, one per {per}. "
            f"Received: shape={ids.shape}, dtype={ids.dtype}"
        )
    return ids.astype(np.int64)


def save_codes(path, codes, bits=None, ids=None, paths=None, labels=None):
    """Writes a codes file to exactly `path` (numpy would add a suffix).

    Args:
        path: the file, usually a temporary name from an atomic write; its
            final name's suffix picks the format: an `.npy` gets the packed
            codes only.
        codes: the codes in any form (`keras_mlh_runtime.codes.to_packed`).
        bits: the code length, needed for packed codes in an `.npz`.
        ids: int64 ids, one per code; `None` numbers them 0..n-1.
        paths: the image files, one per code, or `None`.
        labels: the labels, one per code, or `None`.
        (`.npz` only: `ids`, `paths` and `labels`.)
    """
    packed = to_packed(codes, bits)
    with open(path, "wb") as f:
        if str(path).lower().endswith(".npy"):
            np.save(f, packed, allow_pickle=False)
            return
        ids = np.arange(len(packed)) if ids is None else ids
        write_npz_codes(f, packed, ids=ids, paths=paths, labels=labels)


def write_npz_codes(f, packed, ids=None, paths=None, labels=None):
    """Writes packed codes and what goes with them as an `.npz` to a file
    object: the one layout `load_codes` reads, also that of Beam's shards.

    Args:
        f: a binary file object (a local file, or a Beam file system's).
        packed: uint8 packed codes `(n, bits / 8)`.
        ids, paths, labels: one per code each, or `None` to leave out.
    """
    extra = {k: v for k, v in (("paths", paths), ("labels", labels)) if v is not None}
    if ids is not None:
        extra["ids"] = np.asarray(ids).astype(np.int64)
    np.savez_compressed(f, codes=packed, bits=np.int64(packed.shape[1] * 8), **extra)


def load_codes(path, what="Codes file"):
    """Packed codes with their ids and paths from a codes file.

    Args:
        path: an `.npy` of codes, or an `.npz` with `codes` and optional
            `ids`, `paths` and `bits`; packed uint8 or ±1 codes.
        what: what the file is, for messages.

    Returns:
        `(packed, ids, paths, bits)`: uint8 codes `(n, bits / 8)`, int64 ids
        or `None`, paths (one per code) or `None`, and the code length.
    """
    ids = paths = bits = None
    if path.lower().endswith(".npy"):
        codes = load_npy(path, what)
    elif path.lower().endswith(".npz"):
        arrays = load_npz(path, what)
        if "codes" not in arrays and any(k in arrays for k in IMAGE_KEYS):
            raise ValueError(
                f"{path!r} holds images, not codes; pass --model MODEL.keras to "
                "encode them, or encode them first with `keras-mlh encode`."
            )
        codes = arrays[
            pick(arrays, ("codes",), path, "make one with `keras-mlh encode`.")
        ]
        ids = arrays.get("ids")
        paths = arrays.get("paths")
        if "bits" in arrays:
            bits = int(arrays["bits"])
    elif os.path.isdir(path):
        raise ValueError(
            f"{path!r} is a folder: pass --model MODEL.keras to encode its images, "
            "or give a codes file from `keras-mlh encode`."
        )
    else:
        require_file(path, what)
        raise ValueError(
            f"{what} must be an .npy or .npz file from `keras-mlh encode`; got {path!r}."
        )
    try:
        packed = to_packed(codes, bits, name=f"codes of {path}")
    except ValueError as error:
        raise ValueError(first_line(error)) from None
    if ids is not None:
        ids = check_ids(ids, len(packed), path, "code")
    if paths is not None and len(paths) != len(packed):
        paths = None
    return packed, ids, paths, packed.shape[1] * 8


def load_code_files(paths, what="Codes file"):
    """The codes of one or several codes files, concatenated in order.

    Several files are, e.g., the shards of `keras_mlh_runtime.beam_encode`.

    Args:
        paths: the files (see `load_codes`).
        what: what the files are, for messages.

    Returns:
        `(packed, ids, paths, bits)` as `load_codes`: ids are `None` when no
        file has ids (the index numbers the codes 0..n-1 in this order);
        paths are kept when every file has them.
    """
    if len(paths) == 1:
        return load_codes(paths[0], what)
    real = [os.path.realpath(path) for path in paths]
    twice = next(
        (p for p, r in zip(paths, real, strict=True) if real.count(r) > 1), None
    )
    if twice is not None:
        raise ValueError(
            f"{twice!r} is given twice: its codes would be indexed twice; give "
            "each codes file once."
        )
    parts = [load_codes(path, what) for path in paths]
    lengths = {bits for _, _, _, bits in parts}
    if len(lengths) > 1:
        found = ", ".join(
            f"{p!r}: {bits}" for p, (*_, bits) in zip(paths, parts, strict=True)
        )
        raise ValueError(
            f"The codes files hold codes of different lengths ({found} bits); "
            "encode them all with the same model."
        )
    packed = np.concatenate([part[0] for part in parts])
    ids = _all_or_none(
        paths,
        [part[1] for part in parts],
        "has no `ids` but other codes files do; give every file ids, or none "
        "(the index then numbers the codes in order).",
    )
    names = _all_or_none(
        paths,
        [part[2] for part in parts],
        "has no image `paths` (one per code) but other codes files do: the "
        "index would lose them all; encode every file from image files, or "
        "index the files without paths separately.",
    )
    if names is not None:
        unique, counts = np.unique(names, return_counts=True)
        if counts.max() > 1:
            raise ValueError(
                f"The image {str(unique[counts.argmax()])!r} is in several codes "
                "files (shards of two runs over the same images?); give the "
                "shards of one run."
            )
    return packed, ids, names, lengths.pop()


def _all_or_none(files, arrays, lacking):
    """The `arrays` of every file concatenated, `None` when no file has one.

    Args:
        files: the codes files, for the message.
        arrays: one array or `None` per file.
        lacking: the message after the name of a file without one, when
            some files have one and others not.
    """
    given = [array is not None for array in arrays]
    if not any(given):
        return None
    if not all(given):
        raise ValueError(f"{files[given.index(False)]!r} {lacking}")
    return np.concatenate(arrays)

"""`HammingIndex`: binary codes searched by Hamming distance with faiss."""

import json
import os
import zipfile

import faiss
import numpy as np

from keras_mlh_runtime import __version__
from keras_mlh_runtime.codes import to_packed, validate_bits
from keras_mlh_runtime.errors import check_int_in_range, check_positive_int, first_line
from keras_mlh_runtime.files import atomic_path

KINDS = ("flat", "hnsw", "ivf")
FORMAT = "keras-mlh-hamming-index"
FORMAT_VERSION = 3  # one file: faiss's bytes, the settings and the paths
# The distance of a result slot an approximate index found no item for.
MISSING_DISTANCE = np.iinfo(np.int32).max
_MAX_ID = np.iinfo(np.int64).max
_MAX_PARAMETER = np.iinfo(np.int32).max  # faiss takes C ints
_SETTINGS = ("hnsw_neighbors", "nlist", "nprobe", "ef_search", "ef_construction")


def _check_setting(name, value):
    low, high = (2, 1024) if name == "hnsw_neighbors" else (1, _MAX_PARAMETER)
    return check_int_in_range(name, value, low, high)


def _setting(name, doc, settable=True):
    """A faiss parameter, validated before faiss sees it."""

    def set_(self, value):
        self._settings[name] = _check_setting(name, value)
        self._apply()

    return property(
        lambda self: self._settings[name], set_ if settable else None, doc=doc
    )


class HammingIndex:
    """A Hamming-distance index of ±1 or packed uint8 codes, on faiss binary
    indexes; items carry int64 ids and optionally paths. The search settings
    can be set at any time (their recall and speed: `benchmarks/results/ann.md`).

    Args:
        bits: code length, a positive multiple of 8.
        kind: `"flat"` (exact), `"hnsw"` or `"ivf"` (trained on the first
            batch added): faiss's `IndexBinaryFlat`, `...HNSW`, `...IVF`.
        hnsw_neighbors: graph degree of HNSW (faiss's `M`), 2 to 1024.
        nlist: number of inverted lists of IVF.
        nprobe: lists visited per IVF query (at most `nlist`).
        ef_search: HNSW candidates per query (at least `k`): slower, better.
        ef_construction: HNSW candidates while adding.

    Example:
    >>> codes = np.random.default_rng(0).integers(0, 256, (100, 4), np.uint8)
    >>> index = HammingIndex(bits=32)  # packed codes: 4 bytes of 8 bits
    >>> _ = index.add(codes, ids=np.arange(100) + 1000, paths=[f"images/{i}.png" for i in range(100)])
    >>> distances, ids = index.search(codes[:2], k=3)
    >>> index.save("db.faiss"); again = HammingIndex.load("db.faiss")
    >>> int(ids[0, 0]), int(distances[0, 0]), again.paths_of(ids[0])[0]
    (1000, 0, 'images/0.png')
    """

    hnsw_neighbors = _setting("hnsw_neighbors", "HNSW graph degree.", settable=False)
    nlist = _setting("nlist", "Number of IVF lists.", settable=False)
    nprobe = _setting("nprobe", "IVF lists visited per query; settable.")
    ef_search = _setting("ef_search", "HNSW candidates per query; settable.")
    ef_construction = _setting("ef_construction", "HNSW candidates while adding.")

    def __init__(
        self,
        bits,
        kind="flat",
        hnsw_neighbors=32,
        nlist=1024,
        nprobe=8,
        ef_search=128,
        ef_construction=40,
    ):
        self.bits = validate_bits(bits)
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        self.kind = kind
        values = (hnsw_neighbors, nlist, nprobe, ef_search, ef_construction)
        self._settings = {
            name: _check_setting(name, value)
            for name, value in zip(_SETTINGS, values, strict=True)
        }
        base = {"flat": "BFlat", "hnsw": "BHNSW{hnsw_neighbors}", "ivf": "BIVF{nlist}"}
        factory = "IDMap," + base[kind].format(**self._settings)
        self._index = faiss.index_binary_factory(self.bits, factory)
        self._apply()
        self._paths = None
        self._largest = -1  # the largest id so far

    def _base(self):
        return faiss.downcast_IndexBinary(self._index.index)

    def _apply(self):
        base = self._base()
        if self.kind == "ivf":
            base.nprobe = self.nprobe
        elif self.kind == "hnsw":
            base.hnsw.efSearch = self.ef_search
            base.hnsw.efConstruction = self.ef_construction

    def __len__(self):
        return int(self._index.ntotal)

    @property
    def ids(self):
        """The ids of the items, in insertion order (int64, a copy)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    @property
    def has_paths(self):
        """Whether any item was added with a path."""
        return self._paths is not None

    def paths_of(self, ids):
        """The paths of `ids` (e.g. a row of `search`'s): a list of `str`, or
        `None` for an item without one or id -1."""
        paths = self._paths or {}
        return [paths.get(int(i)) for i in np.asarray(ids).reshape(-1)]

    def add(self, codes, ids=None, paths=None):
        """Adds codes with their ids and, optionally, their paths.

        Args:
            codes: `(n, bits)` ±1 codes or `(n, bits / 8)` packed uint8.
            ids: non-negative 64-bit integer ids, unique over the whole
                index; default: counting on above every id so far.
            paths: optional `n` strings (or `None`s), saved with the index
                and returned by `paths_of`.

        Returns:
            The ids of the added items (on invalid input, nothing is added).
        """
        packed = to_packed(codes, self.bits)
        n = len(packed)
        if ids is None:
            start = max(len(self), self._largest + 1)
            ids = np.arange(start, start + n, dtype=np.int64)
        else:
            ids = _check_ids(ids, n)
            # Ids above every stored one are new by construction.
            stored = self.ids if n and ids.min() <= self._largest else []
            if (repeated := ids[np.isin(ids, stored)]).size:
                raise ValueError(
                    "`ids` must be unique, also across earlier add() calls; id "
                    f"{int(repeated[0])} is already in the index."
                )
        if paths is not None:
            paths = list(paths)
            if len(paths) != n or not all(
                p is None or isinstance(p, str) for p in paths
            ):
                raise ValueError(
                    f"`paths` must be {n} strings (or None), one per code. "
                    f"Received {len(paths)} items."
                )
        if not self._index.is_trained:
            if n < self.nlist:
                raise ValueError(
                    f"An IVF index with nlist={self.nlist} is trained on the first "
                    f"codes added and needs at least {self.nlist} of them (got {n}). "
                    "Add more codes at once or use a smaller nlist."
                )
            self._index.train(packed)
        self._index.add_with_ids(packed, ids)
        self._largest = max(self._largest, int(ids.max())) if n else self._largest
        if paths is not None:
            self._paths = self._paths or {}
            self._paths.update(
                (int(i), p) for i, p in zip(ids, paths, strict=True) if p is not None
            )
        return ids

    def search(self, queries, k):
        """The `k` nearest items of each query by Hamming distance.

        Args:
            queries: `(nq, bits)` ±1 codes or packed uint8.
            k: number of neighbours, > 0; capped at `len(self)`.

        Returns:
            `(distances, ids)`, int32 and int64 `(nq, min(k, len(self)))`,
            nearest first; a slot an approximate index left empty holds id
            -1 and distance `MISSING_DISTANCE`.
        """
        k = min(check_positive_int("k", k), len(self))
        packed = to_packed(queries, self.bits, name="queries")
        if k == 0:
            empty = np.zeros((len(packed), 0))
            return empty.astype(np.int32), empty.astype(np.int64)
        distances, ids = self._index.search(packed, k)
        distances = distances.astype(np.int32)
        distances[ids < 0] = MISSING_DISTANCE
        return distances, ids.astype(np.int64)

    def range_search(self, queries, radius):
        """All items within Hamming distance `radius` (inclusive) of each query.

        Args:
            queries: `(nq, bits)` ±1 codes or packed uint8.
            radius: maximum distance, >= 0.

        Returns:
            A `(distances, ids)` pair per query, by distance, then id.
        """
        radius = check_int_in_range("radius", radius, 0, _MAX_PARAMETER - 1)
        if self.kind == "hnsw":
            raise ValueError(
                "faiss's binary HNSW index has no range search; use kind='flat' or "
                "kind='ivf' for radius queries."
            )
        packed = to_packed(queries, self.bits, name="queries")
        # faiss keeps distances strictly below the radius it is given.
        limits, distances, ids = self._index.range_search(packed, radius + 1)
        results = []
        for start, end in zip(limits[:-1], limits[1:], strict=True):
            d, found = distances[start:end].astype(np.int32), ids[start:end]
            order = np.lexsort((found, d))
            results.append((d[order], found[order].astype(np.int64)))
        return results

    def save(self, path):
        """Writes the index, its settings and paths as one `.npz` (CRC-checked
        by `load`), renamed over `path`: readers load the previous index or
        this one, with no lock; a full disk or a kill leaves the previous one.

        Args:
            path: the index file; its folder must exist.
        """
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "bits": self.bits,
            "count": len(self),
            "kind": self.kind,
            **self._settings,
            "paths": None if self._paths is None else list(self._paths.items()),
            "keras_mlh_version": __version__,
        }
        with atomic_path(path) as temp, open(temp, "wb") as f:
            # Into our own file, not faiss's: faiss ignores a failed close.
            np.savez(
                f,
                faiss=faiss.serialize_index_binary(self._index),
                meta=np.frombuffer(json.dumps(meta).encode(), np.uint8),
            )

    @classmethod
    def load(cls, path):
        """Loads an index written by `save`; a truncated, damaged or foreign
        file gets a one-line `ValueError` before faiss parses a byte of it.

        Args:
            path: the index file.

        Returns:
            The `HammingIndex`.
        """
        path = os.path.abspath(os.fspath(path))
        meta, blob = _read(path)
        try:
            self = cls(meta["bits"], meta["kind"], **{k: meta[k] for k in _SETTINGS})
        except ValueError as error:
            raise ValueError(
                f"Damaged index {path!r}: {error} Rebuild the index."
            ) from None
        try:
            index = faiss.deserialize_index_binary(blob)
        except RuntimeError as error:
            raise _not_ours(path, first_line(error)) from None
        base = faiss.downcast_IndexBinary(getattr(index, "index", index))
        if not isinstance(index, faiss.IndexBinaryIDMap) or type(base) is not type(
            self._base()
        ):
            raise _not_ours(path, f"it holds a {type(base).__name__}")
        if index.ntotal != meta["count"] or index.d != meta["bits"]:
            raise _not_ours(
                path,
                f"it holds {index.ntotal} codes of {index.d} bits, its settings say "
                f"{meta['count']} of {meta['bits']}",
            )
        self._index = index
        self._apply()
        self._paths = None if meta["paths"] is None else dict(meta["paths"])
        self._largest = int(self.ids.max()) if len(self) else -1
        return self


def _check_ids(ids, n):
    """`ids` as `n` unique int64 ids (faiss reports -1 for an empty slot)."""
    array = np.asarray(ids)
    if (
        array.shape != (n,)
        or (n and array.dtype.kind not in "iu")
        or (n and (array.min() < 0 or array.max() > _MAX_ID))
    ):
        raise ValueError(
            f"`ids` must be {n} integers in [0, {_MAX_ID}], one per code: "
            "non-negative (faiss reports -1 for an empty result slot) and fit in "
            f"64-bit signed integers. Received: shape={array.shape}, "
            f"dtype={array.dtype}"
        )
    array = array.astype(np.int64)
    if n > 1 and not np.all(array[1:] > array[:-1]):  # increasing: unique
        values, counts = np.unique(array, return_counts=True)
        if counts.max() > 1:
            raise ValueError(
                f"`ids` must be unique; id {int(values[counts > 1][0])} is given "
                "more than once."
            )
    return array


def _not_ours(path, reason):
    return ValueError(
        f"{path!r} is not a keras-mlh index (truncated, damaged or another "
        f"kind of file: {reason}); rebuild it with HammingIndex.save or "
        "`keras-mlh index build`."
    )


def _read(path):
    """`(meta, faiss bytes)` of an index file, checked before faiss reads it."""
    if not os.path.isfile(path):
        raise ValueError(f"Index file not found: {path!r}")
    try:
        with open(path, "rb") as file:
            if file.read(4) != b"PK\x03\x04":  # a zip, as np.savez writes
                raise zipfile.BadZipFile("not a zip archive")
            file.seek(0)
            # Reading a member to its end checks its CRC-32.
            with np.load(file, allow_pickle=False) as data:
                meta, blob = json.loads(data["meta"].tobytes()), data["faiss"]
    except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError,
            NotImplementedError) as error:  # fmt: skip
        raise _not_ours(path, first_line(error)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise _not_ours(path, "another format")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} is index format version {meta.get('format_version')!r}, "
            f"this keras-mlh reads version {FORMAT_VERSION}: rebuild the index "
            "(`keras-mlh index build` or HammingIndex.save)."
        )
    types = {"bits": int, "count": int, "kind": str, "paths": (list, type(None))}
    for field in ("bits", "count", "kind", "paths", *_SETTINGS):
        value = meta.get(field)
        if not isinstance(value, types.get(field, int)) or isinstance(value, bool):
            raise ValueError(
                f"Damaged index {path!r}: `{field}` is missing or of the wrong "
                "type. Rebuild the index."
            )
    return meta, blob

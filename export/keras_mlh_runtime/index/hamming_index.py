"""`HammingIndex`: binary codes searched by Hamming distance with faiss."""

import json
import os
import zipfile

import numpy as np

from keras_mlh_runtime.codes import to_packed, validate_bits
from keras_mlh_runtime.errors import (
    check_int_in_range,
    check_positive_int,
    first_line,
)
from keras_mlh_runtime.files import atomic_path
from keras_mlh_runtime.index.id_set import check_ids, check_new
from keras_mlh_runtime.version import __version__

try:
    import faiss
except ImportError:
    raise ImportError(
        "keras_mlh_runtime.index needs faiss: pip install faiss-cpu "
        "(a dependency of keras-mlh-runtime)."
    ) from None

KINDS = ("flat", "hnsw", "ivf")
FORMAT = "keras-mlh-hamming-index"
# 3: one file, faiss's bytes with the settings and paths (2: four files).
FORMAT_VERSION = 3
# Distance reported for result slots that hold no item (an approximate
# index may find fewer than k items).
MISSING_DISTANCE = np.iinfo(np.int32).max
# faiss takes its parameters as C ints.
_MAX_PARAMETER = np.iinfo(np.int32).max
_MAX_HNSW_NEIGHBORS = 1024
_BASES = {
    "flat": faiss.IndexBinaryFlat,
    "hnsw": faiss.IndexBinaryHNSW,
    "ivf": faiss.IndexBinaryIVF,
}


class HammingIndex:
    """A Hamming-distance index of binary codes, on faiss binary indexes.

    Items carry user ids (non-negative int64) and, optionally, a path each
    (e.g. the image file a code came from). faiss does the search:
    `kind="flat"` is the exact `IndexBinaryFlat` (the default; exhaustive,
    exact, fast up to millions of 64-bit codes), `"hnsw"` an
    `IndexBinaryHNSW` graph and `"ivf"` an `IndexBinaryIVF` with `nlist`
    lists (approximate, for larger databases; IVF is trained on the first
    batch added, which must hold at least `nlist` codes). Codes are ±1 codes
    (any signed or float dtype) or packed uint8 bytes (`keras_mlh_runtime.codes.pack_codes`);
    a uint8 array is always read as packed.

    The search-time knobs `nprobe`, `ef_search` (and `ef_construction`, for
    later adds) can be changed at any time, also after `load`; recall and
    speed of each value on learned-like codes: `benchmarks/results/ann.md`.

    Args:
        bits: code length, a positive multiple of 8.
        kind: `"flat"`, `"hnsw"` or `"ivf"`.
        hnsw_neighbors: graph degree of HNSW (faiss's `M`), 2 to 1024.
        nlist: number of inverted lists of IVF.
        nprobe: lists visited per IVF query (capped at `nlist` by faiss).
        ef_search: HNSW candidate list length per query (faiss uses at least
            `k`); higher is slower and finds more of the true neighbours.
        ef_construction: HNSW candidate list length while adding.

    Example:
    >>> rng = np.random.default_rng(0)
    >>> database_codes = rng.integers(0, 256, (100, 4), dtype=np.uint8)  # packed
    >>> database_files = [f"images/{i}.png" for i in range(100)]
    >>> index = HammingIndex(bits=32)
    >>> ids = index.add(database_codes, ids=np.arange(100) + 1000, paths=database_files)
    >>> distances, ids = index.search(database_codes[:2], k=3)
    >>> index.save("db.faiss"); again = HammingIndex.load("db.faiss")
    >>> int(ids[0, 0]), int(distances[0, 0]), again.paths_of(ids[0])[0]
    (1000, 0, 'images/0.png')
    """

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
        validate_bits(bits)
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        self.bits = int(bits)
        self.kind = kind
        self._hnsw_neighbors = _check_parameter(
            "hnsw_neighbors", hnsw_neighbors, low=2, high=_MAX_HNSW_NEIGHBORS
        )
        self._nlist = _check_parameter("nlist", nlist)
        self._index = faiss.IndexBinaryIDMap(self._make_base())
        self._paths = None
        self._largest = -1  # the largest id so far
        self.nprobe = nprobe
        self.ef_search = ef_search
        self.ef_construction = ef_construction

    def _make_base(self):
        if self.kind == "flat":
            return faiss.IndexBinaryFlat(self.bits)
        if self.kind == "hnsw":
            return faiss.IndexBinaryHNSW(self.bits, self._hnsw_neighbors)
        quantizer = faiss.IndexBinaryFlat(self.bits)
        index = faiss.IndexBinaryIVF(quantizer, self.bits, self._nlist)
        # The quantizer must outlive this function: faiss holds a raw pointer.
        index.own_fields = True
        quantizer.this.disown()
        return index

    # ------------------------------------------------------------ knobs
    @property
    def hnsw_neighbors(self):
        """HNSW graph degree; fixed when the index is made."""
        return self._hnsw_neighbors

    @property
    def nlist(self):
        """Number of IVF lists; fixed when the index is made."""
        return self._nlist

    @property
    def nprobe(self):
        """IVF lists visited per query; settable (validated) at any time."""
        return self._nprobe

    @nprobe.setter
    def nprobe(self, value):
        self._nprobe = _check_parameter("nprobe", value)
        if self.kind == "ivf":
            self._base().nprobe = self._nprobe

    @property
    def ef_search(self):
        """HNSW candidates per query; settable (validated) at any time."""
        return self._ef_search

    @ef_search.setter
    def ef_search(self, value):
        self._ef_search = _check_parameter("ef_search", value)
        if self.kind == "hnsw":
            self._base().hnsw.efSearch = self._ef_search

    @property
    def ef_construction(self):
        """HNSW candidates while adding; settable, applies to later adds."""
        return self._ef_construction

    @ef_construction.setter
    def ef_construction(self, value):
        self._ef_construction = _check_parameter("ef_construction", value)
        if self.kind == "hnsw":
            self._base().hnsw.efConstruction = self._ef_construction

    def _base(self):
        return faiss.downcast_IndexBinary(self._index.index)

    # ------------------------------------------------------------ items
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
        """The paths of items, `None` for an item without one or id -1.

        Args:
            ids: ids, e.g. a row of the ids `search` returns.

        Returns:
            A list of `str` or `None`, one per id.
        """
        paths = self._paths or {}
        return [paths.get(int(i)) for i in np.asarray(ids).reshape(-1)]

    def add(self, codes, ids=None, paths=None):
        """Adds codes with their ids and, optionally, their paths.

        Ids above every stored one (such as the default ones) are new by
        construction; a batch reaching below them is checked against faiss's
        stored ids (`numpy.isin`). No copy of the ids is kept.

        Args:
            codes: `(n, bits)` ±1 codes or `(n, bits / 8)` packed uint8.
            ids: non-negative 64-bit integer ids, unique over the whole
                index; default `len(self), len(self) + 1, ...` (or above
                the largest id so far).
            paths: optional sequence of `n` strings (or `None`s), saved with
                the index and returned by `paths_of`.

        Returns:
            The ids of the added items.

        Raises:
            ValueError: on invalid codes, ids or paths; nothing is added.
        """
        packed = to_packed(codes, self.bits)
        n = len(packed)
        if ids is None:
            start = max(len(self), self._largest + 1)
            ids = np.arange(start, start + n, dtype=np.int64)
        else:
            ids = check_ids(ids, n)
            if n and ids.min() <= self._largest:
                check_new(ids, self.ids)
        if paths is not None:
            paths = list(paths)
            if len(paths) != n or not all(
                p is None or isinstance(p, str) for p in paths
            ):
                raise ValueError(
                    f"`paths` must be {n} strings (or None), one per code. "
                    f"Received {len(paths)} items."
                )
        if self.kind == "ivf" and not self._index.index.is_trained:
            if n < self._nlist:
                raise ValueError(
                    f"An IVF index with nlist={self._nlist} is trained on the first "
                    f"codes added and needs at least {self._nlist} of them (got {n}). "
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

    # ----------------------------------------------------------- search
    def search(self, queries, k):
        """The `k` nearest items of each query by Hamming distance.

        Args:
            queries: `(nq, bits)` ±1 codes or packed uint8.
            k: number of neighbours, > 0; capped at `len(self)` before any
                memory is allocated.

        Returns:
            `(distances, ids)`, int32 and int64 arrays `(nq, min(k,
            len(self)))`, nearest first (so `(nq, 0)` for an empty index).
            An approximate index may find fewer: its empty slots hold id -1
            and distance `MISSING_DISTANCE`. The order of items at equal
            distance is faiss's.
        """
        k = min(_check_k(k), len(self))
        packed = to_packed(queries, self.bits, name="queries")
        if k == 0:
            return np.zeros((len(packed), 0), np.int32), np.zeros(
                (len(packed), 0), np.int64
            )
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
            A list with one `(distances, ids)` pair per query, sorted by
            distance, then id.
        """
        if (
            isinstance(radius, bool)
            or not isinstance(radius, (int, np.integer))
            or (radius < 0)
        ):
            raise ValueError(f"`radius` must be an integer >= 0. Received: {radius!r}")
        if self.kind == "hnsw":
            raise ValueError(
                "faiss's binary HNSW index has no range search; use kind='flat' or "
                "kind='ivf' for radius queries."
            )
        packed = to_packed(queries, self.bits, name="queries")
        # faiss keeps distances strictly below the radius it is given.
        limits, distances, ids = self._index.range_search(packed, int(radius) + 1)
        results = []
        for i in range(len(packed)):
            d = distances[limits[i] : limits[i + 1]].astype(np.int32)
            found = ids[limits[i] : limits[i + 1]].astype(np.int64)
            order = np.lexsort((found, d))
            results.append((d[order], found[order]))
        return results

    # ---------------------------------------------------------------- io
    def save(self, path):
        """Writes the index, its settings and its paths as one file, atomically.

        The file is a `.npz` (a zip whose every member carries a CRC-32 that
        `load` checks): `faiss`, the bytes of `faiss.serialize_index_binary`,
        and `meta`, JSON of the settings and paths. It is written under a
        temporary name, fsynced and renamed over `path`: a reader loads the
        previous index or the new one, never a mix, and needs no lock; a full
        disk or a kill leaves the previous file.

        Args:
            path: the index file; its folder must exist.

        Raises:
            ValueError: when the folder is missing or writing fails.
        """
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "bits": self.bits,
            "count": len(self),
            "kind": self.kind,
            "hnsw_neighbors": self.hnsw_neighbors,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "ef_search": self.ef_search,
            "ef_construction": self.ef_construction,
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
        """Loads an index written by `save`, with its paths.

        The file is checked (zip signature, CRC-32 of every member, format,
        settings) before faiss parses a byte of it.

        Raises:
            ValueError: when the file is missing, truncated, damaged, or not
                a keras-mlh index.
        """
        path = os.path.abspath(os.fspath(path))
        meta, index = _read(path)
        self = cls.__new__(cls)
        self.bits, self.kind = meta["bits"], meta["kind"]
        self._hnsw_neighbors = meta["hnsw_neighbors"]
        self._nlist = meta["nlist"]
        self._index = index
        self._paths = None if meta["paths"] is None else dict(meta["paths"])
        self._largest = int(self.ids.max()) if len(self) else -1
        self.nprobe = meta["nprobe"]
        self.ef_search = meta["ef_search"]
        self.ef_construction = meta["ef_construction"]
        return self


def _read(path):
    """`(meta, faiss index)` of the file `path`, checked before faiss reads it."""

    def not_ours(reason):
        return ValueError(
            f"{path!r} is not a keras-mlh index (truncated, damaged or another "
            f"kind of file: {reason}); rebuild it with HammingIndex.save or "
            "`keras-mlh index build`."
        )

    try:
        file = open(path, "rb")
    except FileNotFoundError:
        raise ValueError(f"Index file not found: {path!r}") from None
    with file:
        if file.read(4) != b"PK\x03\x04":  # a zip, as np.savez writes
            raise not_ours("not a zip archive")
        file.seek(0)
        try:
            # Reading a member to its end checks its CRC-32.
            with np.load(file, allow_pickle=False) as data:
                meta = json.loads(data["meta"].tobytes())
                blob = data["faiss"]
        except (zipfile.BadZipFile, KeyError, ValueError, EOFError, OSError,
                NotImplementedError) as error:  # fmt: skip
            raise not_ours(first_line(error)) from None
    _check_meta(meta, path)
    try:
        index = faiss.deserialize_index_binary(blob)
    except RuntimeError as error:
        raise not_ours(first_line(error)) from None
    base = faiss.downcast_IndexBinary(getattr(index, "index", index))
    if not isinstance(index, faiss.IndexBinaryIDMap) or not isinstance(
        base, _BASES[meta["kind"]]
    ):
        raise not_ours(f"it holds a {type(base).__name__}")
    if index.ntotal != meta["count"] or index.d != meta["bits"]:
        raise not_ours(
            f"it holds {index.ntotal} codes of {index.d} bits, its settings say "
            f"{meta['count']} of {meta['bits']}"
        )
    return meta, index


def _check_meta(meta, path):
    """Refuses settings of another format or with missing or wrong fields."""
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path!r} is not a keras-mlh index.")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path!r} is index format version {meta.get('format_version')!r}, "
            f"this keras-mlh reads version {FORMAT_VERSION}: rebuild the index "
            "(`keras-mlh index build` or HammingIndex.save)."
        )
    fields = {"bits": int, "count": int, "kind": str, "hnsw_neighbors": int,
              "nlist": int, "nprobe": int, "ef_search": int,
              "ef_construction": int, "paths": (list, type(None))}  # fmt: skip
    for field, kind in fields.items():
        if not isinstance(meta.get(field), kind) or isinstance(meta[field], bool):
            raise ValueError(
                f"Damaged index {path!r}: `{field}` is missing or of the wrong "
                "type. Rebuild the index."
            )
    if meta["kind"] not in KINDS:
        raise ValueError(
            f"Damaged index {path!r}: unknown kind {meta['kind']!r}. Rebuild the index."
        )


def _check_parameter(name, value, low=1, high=_MAX_PARAMETER):
    """A faiss integer parameter in `[low, high]`, checked before faiss sees it."""
    return check_int_in_range(name, value, low, high)


def _check_k(k):
    return check_positive_int("k", k)

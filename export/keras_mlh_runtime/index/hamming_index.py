"""`HammingIndex`: binary codes searched by Hamming distance with faiss."""

import json
import os

import numpy as np

from keras_mlh_runtime.codes import to_packed, validate_bits
from keras_mlh_runtime.errors import (
    check_int_in_range,
    check_positive_int,
    first_line,
)
from keras_mlh_runtime.files import check_writable, staged_files
from keras_mlh_runtime.index import file_set
from keras_mlh_runtime.index.id_set import IdSet, check_ids
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
# 2: the sidecar records the size and sha256 of the index and paths files.
FORMAT_VERSION = 2
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
        self._ids = IdSet(self._stored_ids_view, storage=self._reorderable_storage())
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

    def _check_intact(self):
        """Refuses an index whose reordering in `add` was cut short."""
        if self._ids.broken:
            raise RuntimeError(
                "This index was interrupted while add() reordered its items (an "
                "interrupt or out of memory): its ids and codes may no longer "
                "match. Rebuild it, or load its last saved copy."
            )

    # ------------------------------------------------------------ items
    def __len__(self):
        return int(self._index.ntotal)

    @property
    def ids(self):
        """The ids of the items, in the index's order (int64, a copy): the
        insertion order, except that a flat index keeps ids that were added
        out of increasing order sorted in runs (see `add`)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def _stored_ids_view(self):
        """faiss's id table as a numpy view (no copy)."""
        n = self._index.id_map.size()
        if n == 0:
            return np.zeros(0, np.int64)
        return faiss.rev_swig_ptr(self._index.id_map.data(), n)

    def _reorderable_storage(self):
        """For a flat index, the callable giving writable views of faiss's
        ids and codes, which `IdSet` keeps sorted in runs (a flat search
        scans every item, so their order changes nothing but the order of
        ties); `None` for HNSW and IVF, whose items sit in a graph or lists.
        """
        if self.kind != "flat":
            return None

        def storage():
            n = len(self)
            ids = self._stored_ids_view()
            base = self._base()
            if n == 0:
                return ids, np.zeros((0, base.code_size), np.uint8)
            codes = faiss.rev_swig_ptr(base.xb.data(), n * base.code_size)
            return ids, codes.reshape(n, base.code_size)

        return storage

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

        Checking that ids are new costs time linear in the batch (times
        log n), not a pass over the stored ids. Ids added in increasing order
        (such as the default ones) take no memory beyond faiss's own. Others
        are kept in sorted runs (see `IdSet`): in a flat index, faiss's own
        ids and codes are reordered into those runs, so they take no memory
        either (the order of `ids` and of equally distant search results
        changes); in HNSW and IVF indexes, a sorted copy of 8 bytes per id.

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
        self._check_intact()
        packed = to_packed(codes, self.bits)
        n = len(packed)
        if ids is None:
            start = max(len(self), self._ids.largest + 1)
            ids = ordered = np.arange(start, start + n, dtype=np.int64)
        else:
            ids, ordered = check_ids(ids, n)
            self._ids.check_new(ordered)
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
        self._ids.add(ordered)
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
        self._check_intact()
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
        self._check_intact()
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
        """Writes the index, its sidecar and its paths as one matched set.

        The files (`keras_mlh_runtime.index.index_files`) are staged under temporary
        names in the folder of `path` and renamed into place together, the
        sidecar last, under an exclusive lock of `path + ".lock"` (concurrent
        saves of one path take turns). The sidecar records the size and
        sha256 of the others, so `load` refuses a set that a crash between
        two renames left mixed. An index saved without paths removes an
        earlier save's paths file.

        Args:
            path: the index file; its folder must exist.

        Raises:
            ValueError: when the folder is missing or cannot be written.
        """
        self._check_intact()
        path, sidecar_file, paths_file, _ = file_set.index_files(path)
        folder = os.path.dirname(path)
        if not os.path.isdir(folder):
            raise ValueError(f"Folder does not exist: {folder!r}; create it first.")
        check_writable(path, kind="file")
        with file_set.writer_lock(path):
            try:
                self._write_files(path, sidecar_file, paths_file)
            except (OSError, RuntimeError) as error:
                # Name the user's file, not a temporary one (disk full, ...).
                reason = getattr(error, "strerror", None) or first_line(error)
                raise ValueError(
                    f"Cannot write the index {path!r}: {reason}; check the free "
                    "space and permissions."
                ) from None

    def _write_files(self, path, sidecar_file, paths_file):
        """Stages the files of `save` and renames them into place, sidecar last."""
        with staged_files(os.path.dirname(path)) as stage:
            index_temp = stage(os.path.basename(path))
            faiss.write_index_binary(self._index, index_temp)
            records = {"index": file_set.file_record(index_temp), "paths": None}
            if self._paths is not None:
                data = json.dumps(
                    {str(i): p for i, p in self._paths.items()}, indent=0
                ).encode()
                with open(stage(os.path.basename(paths_file)), "wb") as f:
                    f.write(data)
                records["paths"] = file_set.bytes_record(data)
            with open(stage(os.path.basename(sidecar_file)), "w") as f:
                json.dump(self._sidecar(records), f, indent=2)
        if self._paths is None and os.path.exists(paths_file):
            os.remove(paths_file)  # the new sidecar already disowns it

    def _sidecar(self, records):
        return {
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
            "files": records,
            "keras_mlh_version": __version__,
        }

    @classmethod
    def load(cls, path):
        """Loads an index written by `save`, with its paths.

        Reads under a shared lock of `path + ".lock"` when there is one, and
        checks the index and paths files against the sizes and checksums in
        the sidecar, so a set mixed by a crashed or concurrent save is
        refused, never loaded.

        Raises:
            ValueError: when a file is missing, truncated, edited, from
                another save than its sidecar, or not a keras-mlh index.
        """
        path = file_set.index_files(path)[0]
        if not os.path.isfile(path):
            raise ValueError(f"Index file not found: {path!r}")
        with file_set.reader_lock(path):
            sidecar = _read_sidecar(path)
            index = _read_index(path, sidecar)
            paths = _read_paths(path, sidecar)
        self = cls.__new__(cls)
        self.bits = int(sidecar["bits"])
        self.kind = sidecar["kind"]
        self._hnsw_neighbors = int(sidecar["hnsw_neighbors"])
        self._nlist = int(sidecar["nlist"])
        self._index = index
        self._paths = paths
        self._ids = IdSet.of_stored(
            self._stored_ids_view, storage=self._reorderable_storage()
        )
        self.nprobe = sidecar["nprobe"]
        self.ef_search = sidecar["ef_search"]
        self.ef_construction = sidecar["ef_construction"]
        return self


def _read_sidecar(path):
    sidecar_file = path + file_set.SIDECAR_SUFFIX
    try:
        with open(sidecar_file) as f:
            sidecar = json.load(f)
    except FileNotFoundError:
        raise ValueError(
            f"{path!r} has no sidecar {sidecar_file!r}: not a keras-mlh index, "
            "or saved incompletely. Save it again with HammingIndex.save."
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"Corrupt index sidecar {sidecar_file!r}: {error}") from None
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        raise ValueError(f"{sidecar_file!r} is not a keras-mlh index sidecar.")
    if sidecar.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{sidecar_file!r} is format version "
            f"{sidecar.get('format_version', 1)!r}, this keras-mlh reads version "
            f"{FORMAT_VERSION}: rebuild the index (`keras-mlh index build` or "
            "HammingIndex.save)."
        )
    fields = {"bits": int, "count": int, "kind": str, "hnsw_neighbors": int,
              "nlist": int, "nprobe": int, "ef_search": int,
              "ef_construction": int, "files": dict}  # fmt: skip
    for field, kind in fields.items():
        if not isinstance(sidecar.get(field), kind) or isinstance(
            sidecar.get(field), bool
        ):
            raise ValueError(
                f"Corrupt index sidecar {sidecar_file!r}: `{field}` is missing or "
                "not a " + kind.__name__ + ". Rebuild the index."
            )
    if sidecar["kind"] not in KINDS:
        raise ValueError(
            f"Corrupt index sidecar {sidecar_file!r}: unknown kind "
            f"{sidecar['kind']!r}. Rebuild the index."
        )
    return sidecar


def _open_part(file, path, what):
    """`file` opened for reading; a missing one named as a part of `path`."""
    try:
        return open(file, "rb")
    except FileNotFoundError:
        raise ValueError(
            f"The {what} file {file!r} of the index {path!r} is missing: the "
            "index was saved incompletely or its files were separated. Rebuild it."
        ) from None


def _check_record(got, record, file, path, what):
    """Refuses a file whose size and sha256 are not the sidecar's record."""
    if got != record:
        raise ValueError(
            f"The {what} file {file!r} does not match the sidecar "
            f"{path + file_set.SIDECAR_SUFFIX!r} (size or sha256 differ): an "
            "interrupted or concurrent save, or an edited file. Load again once "
            "no save is running, or rebuild the index."
        )


def _verified_bytes(file, record, path, what):
    """The bytes of `file`, refused unless they match the sidecar's record."""
    with _open_part(file, path, what) as f:
        data = f.read()
    _check_record(file_set.bytes_record(data), record, file, path, what)
    return data


def _read_index(path, sidecar):
    """The faiss index of `path`, checked against the sidecar's record
    before faiss parses a byte of it (a damaged or edited file is refused,
    never handed to faiss's reader), then read in chunks: the file's bytes
    are never all in memory beside the index (reading them first, then
    deserializing, held the index three times over: the bytes, faiss's copy
    of them and the index). Both passes read one open file, so a save that
    renames a new file into place meanwhile cannot mix two versions."""
    record = (sidecar.get("files") or {}).get("index")
    with _open_part(path, path, "index") as f:
        _check_record(file_set.stream_record(f), record, path, path, "index")
        f.seek(0)
        try:
            index = faiss.read_index_binary(faiss.PyCallbackIOReader(f.read, 1 << 20))
        except RuntimeError as error:
            raise ValueError(
                f"{path!r} is not a readable faiss binary index (truncated or "
                f"foreign file): {first_line(error)}"
            ) from None
    if not isinstance(index, faiss.IndexBinaryIDMap):
        raise ValueError(f"{path!r} is a faiss index, but not one saved by keras-mlh.")
    base = faiss.downcast_IndexBinary(index.index)
    if not isinstance(base, _BASES[sidecar["kind"]]):
        raise ValueError(
            f"{path!r} holds a {type(base).__name__}, but its sidecar says kind="
            f"{sidecar['kind']!r}. Rebuild the index."
        )
    if index.ntotal != sidecar["count"] or index.d != sidecar["bits"]:
        raise ValueError(
            f"{path!r} holds {index.ntotal} codes of {index.d} bits but its sidecar "
            f"says {sidecar['count']} of {sidecar['bits']}. Rebuild the index."
        )
    return index


def _read_paths(path, sidecar):
    record = sidecar["files"].get("paths")
    if record is None:
        return None
    file = path + file_set.PATHS_SUFFIX
    data = _verified_bytes(file, record, path, "paths")
    return {int(i): p for i, p in json.loads(data).items()}


def _check_parameter(name, value, low=1, high=_MAX_PARAMETER):
    """A faiss integer parameter in `[low, high]`, checked before faiss sees it."""
    return check_int_in_range(name, value, low, high)


def _check_k(k):
    return check_positive_int("k", k)

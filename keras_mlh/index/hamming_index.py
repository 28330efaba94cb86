import json
import os

import faiss
import numpy as np

from keras_mlh.codes import to_packed, validate_bits
from keras_mlh.errors import check_positive_int, first_line
from keras_mlh.files import atomic_path
from keras_mlh.version import __version__

KINDS = ("flat", "hnsw", "ivf")
FORMAT = "keras-mlh-hamming-index"
# Distance reported for result slots that hold no item (fewer than k items).
MISSING_DISTANCE = np.iinfo(np.int32).max


class HammingIndex:
    """A Hamming-distance index of binary codes, on faiss binary indexes.

    Items carry user ids (int64). faiss does the search: `kind="flat"` is the
    exact `IndexBinaryFlat` (the default; exhaustive, exact, fast up to
    millions of 64-bit codes), `"hnsw"` an `IndexBinaryHNSW` graph and `"ivf"`
    an `IndexBinaryIVF` with `nlist` lists (approximate, for larger databases;
    IVF is trained on the first batch added, which must hold at least `nlist`
    codes). Codes are ±1 codes (any signed or float dtype) or packed uint8
    bytes (`keras_mlh.pack_codes`); a uint8 array is always read as packed.

    Args:
        bits: code length, a positive multiple of 8.
        kind: `"flat"`, `"hnsw"` or `"ivf"`.
        hnsw_neighbors: graph degree of HNSW.
        nlist: number of inverted lists of IVF.
        nprobe: lists visited per IVF query.

    Example:
    >>> index = HammingIndex(bits=32)
    >>> index.add(database_codes, ids=database_ids)
    >>> distances, ids = index.search(query_codes, k=10)
    >>> index.save("db.faiss"); again = HammingIndex.load("db.faiss")
    """

    def __init__(self, bits, kind="flat", hnsw_neighbors=32, nlist=256, nprobe=8):
        validate_bits(bits)
        if kind not in KINDS:
            raise ValueError(f"`kind` must be one of {KINDS}. Received: kind={kind!r}")
        self.bits = int(bits)
        self.kind = kind
        self.hnsw_neighbors = int(hnsw_neighbors)
        self.nlist = int(nlist)
        self.nprobe = int(nprobe)
        self._index = faiss.IndexBinaryIDMap(self._make_base())

    def _make_base(self):
        if self.kind == "flat":
            return faiss.IndexBinaryFlat(self.bits)
        if self.kind == "hnsw":
            return faiss.IndexBinaryHNSW(self.bits, self.hnsw_neighbors)
        quantizer = faiss.IndexBinaryFlat(self.bits)
        index = faiss.IndexBinaryIVF(quantizer, self.bits, self.nlist)
        index.nprobe = self.nprobe
        # The quantizer must outlive this function: faiss holds a raw pointer.
        index.own_fields = True
        quantizer.this.disown()
        return index

    def __len__(self):
        return int(self._index.ntotal)

    @property
    def ids(self):
        """The ids of the items, in insertion order (int64)."""
        return faiss.vector_to_array(self._index.id_map).astype(np.int64)

    def add(self, codes, ids=None):
        """Adds codes with their ids.

        Args:
            codes: `(n, bits)` ±1 codes or `(n, bits / 8)` packed uint8.
            ids: int64-compatible ids, unique over the whole index; default
                `len(self), len(self) + 1, ...`.

        Returns:
            The ids of the added items.
        """
        packed = to_packed(codes, self.bits)
        n = len(packed)
        if ids is None:
            ids = np.arange(len(self), len(self) + n, dtype=np.int64)
        else:
            ids = np.asarray(ids)
            if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (n,):
                raise ValueError(
                    f"`ids` must be {n} integers, one per code. "
                    f"Received: shape={ids.shape}, dtype={ids.dtype}"
                )
            ids = ids.astype(np.int64)
            seen = np.concatenate([self.ids, ids])
            if len(np.unique(seen)) != len(seen):
                raise ValueError(
                    "`ids` must be unique, also across earlier add() calls."
                )
        if self.kind == "ivf" and not self._index.index.is_trained:
            if n < self.nlist:
                raise ValueError(
                    f"An IVF index with nlist={self.nlist} is trained on the first "
                    f"codes added and needs at least {self.nlist} of them (got {n}). "
                    "Add more codes at once or use a smaller nlist."
                )
            self._index.train(packed)
        self._index.add_with_ids(packed, ids)
        return ids

    def search(self, queries, k):
        """The `k` nearest items of each query by Hamming distance.

        Args:
            queries: `(nq, bits)` ±1 codes or packed uint8.
            k: number of neighbours, > 0.

        Returns:
            `(distances, ids)`, int32 and int64 arrays `(nq, k)`, nearest
            first. Slots beyond the number of items hold id -1 and distance
            `MISSING_DISTANCE`. The order of items at equal distance is faiss's.
        """
        k = _check_k(k)
        packed = to_packed(queries, self.bits, name="queries")
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
        """Writes the index to `path` and a JSON sidecar to `path + ".json"`.

        Both are written to temporary files in the same folder and renamed
        into place, the index first: an interrupted save leaves the previous
        files, or a sidecar whose count disagrees with the index, which
        `load` refuses; never a file that loads as a smaller index.
        """
        path = os.fspath(path)
        sidecar = {
            "format": FORMAT,
            "bits": self.bits,
            "count": len(self),
            "kind": self.kind,
            "hnsw_neighbors": self.hnsw_neighbors,
            "nlist": self.nlist,
            "nprobe": self.nprobe,
            "keras_mlh_version": __version__,
        }
        # The index is renamed into place first: see the docstring.
        with atomic_path(path + ".json") as sidecar_tmp, atomic_path(path) as index_tmp:
            faiss.write_index_binary(self._index, index_tmp)
            with open(sidecar_tmp, "w") as f:
                json.dump(sidecar, f, indent=2)

    @classmethod
    def load(cls, path):
        """Loads an index written by `save`.

        Raises:
            ValueError: when the file or its sidecar is missing, truncated,
                or not a keras-mlh index.
        """
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"Index file not found: {path!r}")
        try:
            with open(path + ".json") as f:
                sidecar = json.load(f)
        except FileNotFoundError:
            raise ValueError(
                f"{path!r} has no sidecar {path + '.json'!r}: not a keras-mlh index, "
                "or saved incompletely. Save it again with HammingIndex.save."
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(
                f"Corrupt index sidecar {path + '.json'!r}: {error}"
            ) from None
        if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
            raise ValueError(f"{path + '.json'!r} is not a keras-mlh index sidecar.")
        try:
            index = faiss.read_index_binary(path)
        except RuntimeError as error:
            raise ValueError(
                f"{path!r} is not a readable faiss binary index (truncated or foreign "
                f"file): {first_line(error)}"
            ) from None
        if not isinstance(index, faiss.IndexBinaryIDMap):
            raise ValueError(
                f"{path!r} is a faiss index, but not one saved by keras-mlh."
            )
        if index.ntotal != sidecar["count"] or index.d != sidecar["bits"]:
            raise ValueError(
                f"{path!r} holds {index.ntotal} codes of {index.d} bits but its sidecar "
                f"says {sidecar['count']} of {sidecar['bits']}: an interrupted save. "
                "Rebuild the index."
            )
        self = cls.__new__(cls)
        self.bits = int(sidecar["bits"])
        self.kind = sidecar["kind"]
        self.hnsw_neighbors = int(sidecar["hnsw_neighbors"])
        self.nlist = int(sidecar["nlist"])
        self.nprobe = int(sidecar["nprobe"])
        self._index = index
        if self.kind == "ivf":
            faiss.downcast_IndexBinary(index.index).nprobe = self.nprobe
        return self


def _check_k(k):
    return check_positive_int("k", k)

"""Item ids of an index: validation and uniqueness in time linear in a batch."""

import numpy as np

MAX_ID = np.iinfo(np.int64).max


def check_ids(ids, n):
    """`ids` as `n` non-negative int64 ids, unique within the batch.

    faiss marks an empty result slot with id -1, so negative ids would read
    as "no result"; ids above the int64 range would wrap around.

    Args:
        ids: array-like of integers (Python ints, any numpy integer dtype,
            or whole floats are refused: ids are integers, not numbers).
        n: how many there must be (one per code).

    Returns:
        `(ids, sorted_ids)`: int64 arrays in the given and in sorted order.

    Raises:
        ValueError: on a wrong count, non-integer, negative, too large or
            repeated ids.
    """
    array = np.asarray(ids)
    if not isinstance(ids, np.ndarray) and array.dtype.kind in "fO":
        # numpy reads Python ints beyond int64 as float or object: check
        # them as Python ints, exactly.
        items = np.asarray(ids, dtype=object).reshape(-1)
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
               for v in items):  # fmt: skip
            if any(v < 0 or v > MAX_ID for v in items):
                raise ValueError(
                    f"`ids` must be integers in [0, {MAX_ID}] (non-negative, "
                    "64-bit; faiss reports -1 for an empty result slot)."
                )
            array = np.asarray(ids, dtype=np.int64)
    if array.shape != (n,) or not (
        np.issubdtype(array.dtype, np.integer) or (n == 0 and array.dtype == float)
    ):
        raise ValueError(
            f"`ids` must be {n} integers, one per code. "
            f"Received: shape={array.shape}, dtype={array.dtype}"
        )
    if n and array.min() < 0:
        raise ValueError(
            "`ids` must be non-negative: faiss reports -1 for an empty result "
            f"slot. Received: id {int(array.min())}"
        )
    if n and array.dtype == np.uint64 and array.max() > MAX_ID:
        raise ValueError(
            f"`ids` must fit in 64-bit signed integers (<= {MAX_ID}). "
            f"Received: id {int(array.max())}"
        )
    array = array.astype(np.int64, copy=False)
    if np.all(array[1:] > array[:-1]):
        return array, array  # increasing: unique, and sorted without a copy
    ordered = np.sort(array)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if len(repeated):
        raise ValueError(
            f"`ids` must be unique; id {int(repeated[0])} is given more than once."
        )
    return array, ordered


class IdSet:
    """The set of ids of an index, for the "is this id new?" check of `add`.

    Ids added in increasing order (the default ids, or any increasing
    ones) need nothing but the largest id so far: a batch above it cannot
    repeat one. Only when a batch reaches below it are the ids kept, as a
    few sorted runs that merge like a binary counter (each id is merged
    O(log n) times over the life of the index). A check costs
    O(batch · log n), never a pass over all the stored ids.

    Where the index's own storage can be reordered (`storage`: a flat
    index, whose search does not depend on the order of its items), the
    runs are ranges of that storage, sorted in place with their codes, so
    no id is copied: the set takes no memory beyond the index's, and a
    merge of two runs needs a buffer of the smaller one only. Otherwise
    (HNSW, IVF) the runs are sorted copies, 8 bytes per id.

    `work` counts the ids sorted or merged, for tests of the cost.

    Args:
        stored: a callable returning the ids already in the index, a view
            (called once, the first time a batch reaches below the largest).
        largest: the largest stored id, or -1 for none.
        storage: `None`, or a callable returning writable views `(ids,
            codes)` of the index's own ids and codes, `(n,)` int64 and `(n,
            code_bytes)` uint8, fetched anew at each use (an add may move
            them).

    Example:
    >>> stored = np.array([], np.int64)
    >>> ids = IdSet(lambda: stored)
    >>> batch = np.array([3, 8])
    >>> ids.check_new(batch); ids.add(batch); stored = batch
    >>> ids.check_new(np.array([1, 8]))
    Traceback (most recent call last):
    ValueError: `ids` must be unique, also across earlier add() calls; id 8 is already in the index.
    """

    def __init__(self, stored, largest=-1, storage=None):
        self._stored = stored
        self._storage = storage
        self.largest = int(largest)
        # None: no batch reached below the largest id. Otherwise sorted runs:
        # `(start, end)` ranges of `storage`, or sorted id arrays.
        self._runs = None
        self.work = 0
        # True while the storage is being reordered: one cut short (an
        # interrupt, out of memory) may leave ids and codes mismatched.
        self.broken = False

    @classmethod
    def of_stored(cls, stored, storage=None):
        """The set of the ids already in a (loaded) index."""
        view = stored()
        self = cls(stored, int(view.max()) if len(view) else -1, storage)
        if np.all(view[1:] > view[:-1]):
            return self
        if storage is None:
            self._runs = [np.sort(view)]  # not in order: keep them from now on
            self.work += len(view)
            return self
        # A saved index keeps its runs in place: each maximal increasing
        # stretch is one. Many stretches (ids added in another order
        # elsewhere): sort the whole storage once.
        starts = np.flatnonzero(view[1:] < view[:-1]) + 1
        if len(starts) > 64:
            ids, codes = storage()
            self._sort_range(ids, codes, 0, len(ids))
            self._runs = [(0, len(ids))]
            return self
        self._runs = []
        for start, end in zip(
            [0, *starts.tolist()], [*starts.tolist(), len(view)], strict=True
        ):
            self._push_range(start, end)
        return self

    @property
    def nbytes(self):
        """Memory kept for the ids, in bytes (0 while they came in order, and
        always 0 for runs kept in the index's own storage)."""
        if self._runs is None or self._storage is not None:
            return 0
        return sum(run.nbytes for run in self._runs)

    def _run_ids(self):
        """The sorted ids of each run."""
        if self._storage is None:
            return self._runs
        ids = self._storage()[0]
        return [ids[start:end] for start, end in self._runs]

    def check_new(self, ordered):
        """Raises a `ValueError` if any of the sorted ids is already stored."""
        if not len(ordered) or ordered[0] > self.largest:
            return
        if self._runs is None:
            stored = self._stored()
            if self._storage is not None:
                # Kept increasing in place (see `add`): one run already.
                self._runs = [(0, len(stored))]
            else:
                self._runs = [np.sort(stored)]
                self.work += len(stored)
        for run in self._run_ids():
            where = np.searchsorted(run, ordered)
            found = ordered[run[np.minimum(where, len(run) - 1)] == ordered]
            if len(found):
                raise ValueError(
                    f"`ids` must be unique, also across earlier add() calls; id "
                    f"{int(found[0])} is already in the index."
                )

    def add(self, ordered):
        """Records sorted, new ids (after `check_new`), once the index holds
        them as its last `len(ordered)` items."""
        if not len(ordered):
            return
        self.largest = max(self.largest, int(ordered[-1]))
        if self._storage is not None:
            ids, codes = self._storage()
            start, end = len(ids) - len(ordered), len(ids)
            if not np.all(ids[start + 1 : end] > ids[start : end - 1]):
                # Sorted in place even while no run is kept, so that the
                # storage is increasing until a batch reaches below it.
                self._sort_range(ids, codes, start, end)
            if self._runs is not None:
                self._push_range(start, end)
            return
        if self._runs is None:
            return
        run = ordered.copy()  # the caller's array may change later
        while self._runs and len(self._runs[-1]) <= 2 * len(run):
            # A stable sort of two sorted runs is a linear merge in numpy,
            # done in place to keep no third copy.
            run = np.concatenate([self._runs.pop(), run])
            run.sort(kind="stable")
            self.work += len(run)
        self._runs.append(run)

    def _push_range(self, start, end):
        """Appends the sorted storage range `[start, end)` as a run, merging
        it with the last run while that is at most twice as long."""
        while self._runs:
            first, last = self._runs[-1]
            if last - first > 2 * (end - start):
                break
            self._runs.pop()
            ids, codes = self._storage()
            self.broken = True
            merge_in_place(ids, codes, first, start, end)
            self.broken = False
            self.work += end - first
            start = first
        self._runs.append((start, end))

    def _sort_range(self, ids, codes, start, end):
        order = np.argsort(ids[start:end], kind="stable")
        self.broken = True
        ids[start:end] = ids[start:end][order]
        codes[start:end] = codes[start:end][order]
        self.broken = False
        self.work += end - start


def merge_in_place(ids, codes, start, middle, end, chunk=1 << 16):
    """Merges the sorted ranges `[start, middle)` and `[middle, end)` of
    `ids` in place, moving each code with its id.

    The smaller range is copied aside; the other moves towards its place in
    chunks, front to back when it moves left and back to front when it moves
    right, so that no item is overwritten before it has moved; the copy then
    fills the slots left. Extra memory: the smaller range (ids, codes and
    its destinations) and one chunk.

    Args:
        ids: `(n,)` int64, unique, each range sorted.
        codes: `(n, code_bytes)`, the codes of `ids`, row by row.
        start, middle, end: the ranges' bounds.
        chunk: items moved per step.

    Example:
    >>> ids = np.array([2, 5, 9, 1, 7])  # [2, 5, 9] and [1, 7]
    >>> codes = (10 * ids).astype(np.uint8).reshape(-1, 1)
    >>> merge_in_place(ids, codes, 0, 3, 5)
    >>> ids.tolist(), codes[:, 0].tolist()
    ([1, 2, 5, 7, 9], [10, 20, 50, 70, 90])
    """
    left, right = ids[start:middle], ids[middle:end]
    small_left = middle - start <= end - middle
    lo, hi = (start, middle) if small_left else (middle, end)
    small_ids, small_codes = ids[lo:hi].copy(), codes[lo:hi].copy()
    other = right if small_left else left
    # Where each item of the copied range goes: its rank in it plus the
    # number of the other range's ids below it (ids are unique).
    offsets = np.empty(hi - lo, np.uint32 if end - start < 2**32 else np.int64)
    for a in range(0, hi - lo, chunk):
        b = min(a + chunk, hi - lo)
        offsets[a:b] = np.arange(a, b) + np.searchsorted(other, small_ids[a:b])
    if small_left:  # the right range moves left: front to back
        steps = [(a, min(a + chunk, end)) for a in range(middle, end, chunk)]
        base = middle
    else:  # the left range moves right: back to front
        steps = [(max(b - chunk, start), b) for b in range(middle, start, -chunk)]
        base = start
    for a, b in steps:
        moving, moving_codes = ids[a:b].copy(), codes[a:b].copy()
        where = (
            start + np.arange(a - base, b - base) + np.searchsorted(small_ids, moving)
        )
        ids[where] = moving
        codes[where] = moving_codes
    for a in range(0, hi - lo, chunk):
        where = start + offsets[a : a + chunk].astype(np.int64)
        ids[where] = small_ids[a : a + chunk]
        codes[where] = small_codes[a : a + chunk]

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
    O(log n) times over the life of the index), 8 bytes per id. A check
    costs O(batch · log n), never a pass over all the stored ids.

    `work` counts the ids sorted or merged, for tests of the cost.

    Args:
        stored: a callable returning the ids already in the index, a view
            (called once, the first time a batch reaches below the largest).
        largest: the largest stored id, or -1 for none.
    """

    def __init__(self, stored, largest=-1):
        self._stored = stored
        self.largest = int(largest)
        self._runs = None  # None: ids are not kept (increasing so far)
        self.work = 0

    @classmethod
    def of_stored(cls, stored):
        """The set of the ids already in a (loaded) index."""
        view = stored()
        self = cls(stored, int(view.max()) if len(view) else -1)
        if not np.all(view[1:] > view[:-1]):
            self._runs = [np.sort(view)]  # not in order: keep them from now on
            self.work += len(view)
        return self

    @property
    def nbytes(self):
        """Memory kept for the ids, in bytes (0 while they came in order)."""
        return 0 if self._runs is None else sum(run.nbytes for run in self._runs)

    def check_new(self, ordered):
        """Raises a `ValueError` if any of the sorted ids is already stored."""
        if not len(ordered) or ordered[0] > self.largest:
            return
        if self._runs is None:
            stored = np.sort(self._stored())
            self.work += len(stored)
            self._runs = [stored]
        for run in self._runs:
            where = np.searchsorted(run, ordered)
            found = ordered[run[np.minimum(where, len(run) - 1)] == ordered]
            if len(found):
                raise ValueError(
                    f"`ids` must be unique, also across earlier add() calls; id "
                    f"{int(found[0])} is already in the index."
                )

    def add(self, ordered):
        """Records sorted, new ids (after `check_new`)."""
        if not len(ordered):
            return
        self.largest = max(self.largest, int(ordered[-1]))
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

"""Item ids of an index: checked as non-negative int64, unique over the index."""

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
        The ids, an int64 array.

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
    if n < 2 or np.all(array[1:] > array[:-1]):
        return array  # increasing: unique without a sort
    values, counts = np.unique(array, return_counts=True)
    if counts.max() > 1:
        raise ValueError(
            f"`ids` must be unique; id {int(values[counts > 1][0])} is given more "
            "than once."
        )
    return array


def check_new(ids, stored):
    """Refuses ids that are already stored.

    Args:
        ids: the ids of a batch, an int64 array.
        stored: the ids in the index (`HammingIndex.ids`).

    Raises:
        ValueError: naming the first id of `ids` that is in `stored`.

    Example:
    >>> check_new(np.array([1, 8]), stored=np.array([3, 8]))
    Traceback (most recent call last):
    ValueError: `ids` must be unique, also across earlier add() calls; id 8 is already in the index.
    """
    repeated = ids[np.isin(ids, stored)]
    if len(repeated):
        raise ValueError(
            "`ids` must be unique, also across earlier add() calls; id "
            f"{int(repeated[0])} is already in the index."
        )

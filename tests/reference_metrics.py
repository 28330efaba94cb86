"""The slow, obviously correct reference for mAP@K: one query at a time,
a full stable sort of the database each. The tests (tests/test_metrics.py)
and the metrics benchmark (benchmarks/metrics.py) check the compiled
implementation against it; it is not part of the library."""

import numpy as np

from keras_mlh_runtime.codes import to_packed, unpack_codes


def reference_mean_average_precision(
    query_codes, query_labels, database_codes, database_labels, k=None
):
    # float32 ±1 products are exact integers, and BLAS makes this loop a fair
    # baseline for the benchmark (integer matmul is several times slower).
    queries, database = _signs(query_codes), _signs(database_codes)
    query_labels, database_labels = (
        np.asarray(query_labels),
        np.asarray(database_labels),
    )
    bits, n = queries.shape[1], len(database)
    k = n if k is None else min(k, n)
    scores = []
    for i in range(len(queries)):
        distances = ((bits - database @ queries[i]) // 2).astype(np.int64)
        order = np.argsort(distances, kind="stable")[:k]
        if query_labels.ndim == 2:
            relevant = (database_labels[order] != 0) @ (query_labels[i] != 0)
        else:
            relevant = database_labels[order] == query_labels[i]
        scores.append(average_precision(relevant))
    return float(np.mean(scores))


def average_precision(relevant):
    """AP of one ranked list: the mean precision at each relevant item.

    Args:
        relevant: booleans, one per ranked item, best first.

    Returns:
        The average precision, 0.0 without any relevant item.
    """
    positions = np.flatnonzero(relevant) + 1
    if not len(positions):
        return 0.0
    return float(np.mean(np.arange(1, len(positions) + 1) / positions))


def _signs(codes):
    """Codes in any form (uint8 is packed) as float32 ±1 `(n, bits)`."""
    return unpack_codes(to_packed(codes)).astype(np.float32)

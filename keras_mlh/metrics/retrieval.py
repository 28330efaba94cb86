"""Retrieval metrics over Hamming ranking, the deep-hashing way (no TensorFlow):
an item is relevant when it shares a label with the query."""

import math

import numpy as np

from keras_mlh.metrics.hamming_ranking import HammingRanking
from keras_mlh_runtime.errors import check_positive_int, is_int

TIE_BREAKING = ("stable", "average")


def _check_k(k, n, allow_all=True):
    """A cut-off as an int at most `n`; `None` is `n` where `allow_all`."""
    if isinstance(k, np.ndarray) and k.ndim == 0:
        k = k.item()
    k = check_positive_int("k", k, allow_none=allow_all)
    return n if k is None else min(k, n)


def mean_average_precision(
    query_codes,
    query_labels,
    database_codes,
    database_labels,
    k=None,
    tie_breaking="stable",
):
    """mAP@k over Hamming ranking, as HashNet, CSQ and DeepHash compute it: per
    query, the mean precision at the relevant items in the top k (0 if none).

    Args:
        query_codes, database_codes: ±1 codes `(n, bits)` or packed uint8.
        query_labels, database_labels: class ids `(n,)` or multi-hot 0/1 rows.
        k: cut-off; `None` ranks the whole database (mAP@all).
        tie_breaking: `"stable"` (database order) or `"average"` (expected AP
            over random orders of tied items).

    Returns:
        mAP as a Python float.

    Example:
    >>> codes, labels = np.where(np.eye(4, 16) > 0, 1, -1), np.arange(4)
    >>> mean_average_precision(codes, labels, codes, labels, k=1000)
    1.0
    """
    if tie_breaking not in TIE_BREAKING:
        raise ValueError(
            f"`tie_breaking` must be one of {TIE_BREAKING}. Received: {tie_breaking!r}"
        )
    ranking = HammingRanking(query_codes, query_labels, database_codes, database_labels)
    k = _check_k(k, ranking.num_items)
    if tie_breaking == "average":
        scores = [_tie_averaged_ap(i, hits, k) for i, hits, *_ in ranking.blocks()]
        return float(np.mean(np.concatenate(scores)))
    total = 0.0
    for _, _, found, sums in ranking.blocks(cuts=[k]):
        total += _ratio(sums[:, 0], found[:, 0]).sum()
    return float(total / ranking.num_queries)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0."""
    out = np.zeros(np.shape(numerator))
    return np.divide(numerator, denominator, out=out, where=denominator > 0)


def _expected_precision_sum(items, relevant, before_items, before_relevant, harmonic):
    """E[sum of precision at relevant positions] of `items` tied items (`relevant`
    relevant) in random order after `before_items` (`before_relevant`) ones."""
    items = np.asarray(items, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=np.float64)
    slope = np.where(items > 1, (relevant - 1) / np.maximum(items - 1, 1), 0.0)
    start = before_relevant + 1
    # sum_j (start + slope (j - 1)) / (before + j), j = 1..items
    end_index = (before_items + items).astype(np.int64)
    tail = harmonic[end_index] - harmonic[np.asarray(before_items, dtype=np.int64)]
    total = slope * items + (start - slope - slope * before_items) * tail
    return np.where(relevant > 0, relevant / np.maximum(items, 1) * total, 0.0)


def _tie_averaged_ap(items, hits, k):
    """Exact expected AP@k per query from per-distance histograms."""
    n = int(items[0].sum())
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, n + 1))])
    before_items = np.cumsum(items, axis=1) - items
    before_hits = np.cumsum(hits, axis=1) - hits
    full = before_items + items <= k
    sums = _expected_precision_sum(items, hits, before_items, before_hits, harmonic)
    full_sum = np.where(full, sums, 0.0).sum(1)
    full_hits = np.where(full, hits, 0.0).sum(1)
    ap = np.where(full_hits > 0, full_sum / np.maximum(full_hits, 1), 0.0)
    cut = (before_items < k) & (before_items + items > k)
    # Where the cut-off falls inside a tie group, the number `m` of relevant
    # items among its `taken` slots is hypergeometric, and AP divides by it.
    for row, group in zip(*np.nonzero(cut), strict=True):
        size, relevant = int(items[row, group]), int(hits[row, group])
        before, seen = int(before_items[row, group]), int(before_hits[row, group])
        taken, total = int(k - before), full_sum[row]
        if relevant == 0:
            ap[row] = total / seen if seen else 0.0
            continue
        log_total = _log_comb(size, taken)
        expected = 0.0
        for m in range(max(0, taken - (size - relevant)), min(relevant, taken) + 1):
            log_p = _log_comb(relevant, m) + _log_comb(size - relevant, taken - m)
            probability = math.exp(log_p - log_total)
            if seen + m == 0 or probability == 0.0:
                continue
            cut_sum = _expected_precision_sum(taken, m, before, seen, harmonic)
            expected += probability * (total + float(cut_sum)) / (seen + m)
        ap[row] = expected
    return ap


def _log_comb(n, r):
    return math.lgamma(n + 1) - math.lgamma(r + 1) - math.lgamma(n - r + 1)


def precision_at_k(query_codes, query_labels, database_codes, database_labels, k):
    """Mean precision of the top-k items (stable tie-breaking).

    Args:
        k: a cut-off or a list of them; the others as in `mean_average_precision`.

    Returns:
        A float for one `k`, else a dict `{k: precision}`.
    """
    ranking = HammingRanking(query_codes, query_labels, database_codes, database_labels)
    return _at_k(ranking, k, "precision")


def recall_at_k(query_codes, query_labels, database_codes, database_labels, k):
    """Mean recall of the top-k items (0 for a query with no relevant item);
    arguments and result as `precision_at_k`."""
    ranking = HammingRanking(query_codes, query_labels, database_codes, database_labels)
    return _at_k(ranking, k, "recall")


def _at_k(ranking, k, what):
    several = isinstance(k, (list, tuple)) or np.ndim(k) == 1
    ks = list(k) if several else [k]
    if not ks:
        raise ValueError("`k` must be a positive integer or a non-empty list of them.")
    cuts = [_check_k(value, ranking.num_items, allow_all=False) for value in ks]
    totals = np.zeros(len(cuts))
    for _, hits, found, _ in ranking.blocks(cuts=cuts):
        for i, cut in enumerate(cuts):
            if what == "precision":
                totals[i] += (found[:, i] / cut).sum()
            else:
                totals[i] += _ratio(found[:, i], hits.sum(1)).sum()
    values = totals / ranking.num_queries
    if not several:
        return float(values[0])
    return {int(key): float(v) for key, v in zip(ks, values, strict=True)}


def precision_recall_curve(query_codes, query_labels, database_codes, database_labels):
    """Precision and recall within Hamming radius r = 0..bits, as a dict of
    `"radius"`, `"precision"` and `"recall"` arrays: precision over the queries
    that retrieve an item within r (else NaN), recall over those with a
    relevant item."""
    ranking = HammingRanking(query_codes, query_labels, database_codes, database_labels)
    width = ranking.bits + 1
    precision_sum, precision_count = np.zeros(width), np.zeros(width)
    recall_sum, recall_count = np.zeros(width), 0
    for items, hits, *_ in ranking.blocks():
        retrieved, found = np.cumsum(items, axis=1), np.cumsum(hits, axis=1)
        precision_sum += _ratio(found, retrieved).sum(0)
        precision_count += (retrieved > 0).sum(0)
        recall_sum += _ratio(found, found[:, -1:]).sum(0)
        recall_count += int((found[:, -1] > 0).sum())
    nan, counted = np.full(width, np.nan), precision_count > 0
    precision = np.divide(precision_sum, precision_count, out=nan, where=counted)
    recall = recall_sum / max(recall_count, 1)
    return {"radius": np.arange(width), "precision": precision, "recall": recall}


def precision_within_radius(
    query_codes, query_labels, database_codes, database_labels, radius=2
):
    """Mean precision (a float) of the items within Hamming distance `radius`
    (inclusive); a query that retrieves nothing counts 0 (HashNet's convention)."""
    if not is_int(radius) or radius < 0:
        raise ValueError(f"`radius` must be an integer >= 0. Received: {radius!r}")
    ranking = HammingRanking(query_codes, query_labels, database_codes, database_labels)
    radius = min(int(radius), ranking.bits)
    total = 0.0
    for items, hits, *_ in ranking.blocks():
        retrieved = items[:, : radius + 1].sum(1)
        total += _ratio(hits[:, : radius + 1].sum(1), retrieved).sum()
    return float(total / ranking.num_queries)

"""Per-query ranking statistics over Hamming distance in one numba pass: no
sort, no `(queries, database)` matrix, one thread per CPU core."""

import functools
import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from numba import types
from numba.extending import intrinsic

from keras_mlh.labels import check_labels
from keras_mlh_runtime.codes import to_packed

# Rows per block: enough to spread over threads and hide the call overhead.
_BLOCK_ROWS = 1024


@intrinsic
def _popcount(typingctx, value):
    """LLVM's ctpop of a 64-bit word: one POPCNT instruction on x86-64."""
    if value != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return types.int64(value), codegen


def njit_cached(function):
    """numba.njit, cached on disk unless the install is read-only."""
    try:
        return numba.njit(nogil=True, cache=True)(function)
    except RuntimeError:
        return numba.njit(nogil=True)(function)


@njit_cached
def _rank_rows(queries, database, query_keys, database_keys, multi_hot, cuts, out):
    """Fills `out` (as `HammingRanking.blocks`) for these query rows; the
    database's arrays are word-major `(words, n)`, so item loops vectorize."""
    items, hits, found, sums = out
    count = database.shape[1]
    width = items.shape[1]
    distances = np.empty(count, np.int32)
    relevant = np.empty(count, np.uint8)
    slot_distance = np.empty(count + 1, np.int32)
    slot_position = np.empty(count + 1, np.int64)
    before_items = np.empty(width, np.int64)
    seen_hits = np.empty(width, np.int64)
    deepest = 0
    for c in range(cuts.shape[0]):
        deepest = max(deepest, cuts[c])
    for row in range(queries.shape[0]):
        distances[:] = 0
        for w in range(queries.shape[1]):
            word, codes = queries[row, w], database[w]
            for item in range(count):
                distances[item] += _popcount(word ^ codes[item])
        if multi_hot:
            relevant[:] = 0
            for w in range(query_keys.shape[1]):
                word, keys = query_keys[row, w], database_keys[w]
                for item in range(count):
                    relevant[item] |= (word & keys[item]) != 0
        else:
            key, keys = query_keys[row, 0], database_keys[0]
            for item in range(count):
                relevant[item] = keys[item] == key
        # The histogram count right after adding an item is its position
        # among the items at its distance. Relevant items keep it in a slot;
        # the slot index advances only on relevant items (no branch).
        row_items, row_hits = items[row], hits[row]
        relevant_count = 0
        for item in range(count):
            distance = distances[item]
            is_relevant = relevant[item]
            position = row_items[distance] + 1
            row_items[distance] = position
            row_hits[distance] += is_relevant
            slot_distance[relevant_count] = distance
            slot_position[relevant_count] = position
            relevant_count += is_relevant
        if deepest == 0:
            continue
        # A rank is the slot position plus the items closer than its distance.
        closer_items = closer_hits = 0
        for distance in range(width):
            before_items[distance] = closer_items
            seen_hits[distance] = closer_hits
            closer_items += row_items[distance]
            closer_hits += row_hits[distance]
        for slot in range(relevant_count):
            distance = slot_distance[slot]
            position = before_items[distance] + slot_position[slot]
            seen_hits[distance] += 1
            if position <= deepest:
                precision = seen_hits[distance] / position
                for c in range(cuts.shape[0]):
                    if position <= cuts[c]:
                        sums[row, c] += precision
                        found[row, c] += 1


def _threads():
    if hasattr(os, "sched_getaffinity"):  # the cores this process may use
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1  # macOS and Windows


def _as_words(rows):
    """uint8 rows zero-padded to whole 64-bit words, viewed as uint64."""
    return np.pad(rows, ((0, 0), (0, -rows.shape[1] % 8))).view(np.uint64)


class HammingRanking:
    """Queries and database checked and packed once, ranked on demand; the
    arguments are `mean_average_precision`'s."""

    def __init__(self, query_codes, query_labels, database_codes, database_labels):
        queries = to_packed(query_codes, name="query_codes")
        database = to_packed(database_codes, name="database_codes")
        self.bits = queries.shape[1] * 8
        if database.shape[1] != queries.shape[1]:
            raise ValueError(
                f"Query codes have {self.bits} bits but database codes have "
                f"{database.shape[1] * 8}: encode both with the same model."
            )
        self.num_queries, self.num_items = len(queries), len(database)
        if not self.num_queries or not self.num_items:
            raise ValueError(
                f"Ranking needs at least one query and one database code; got "
                f"{self.num_queries} and {self.num_items}."
            )
        query_labels = check_labels(
            query_labels, num_images=self.num_queries, name="query_labels"
        )
        database_labels = check_labels(
            database_labels, num_images=self.num_items, name="database_labels"
        )
        if query_labels.shape[1:] != database_labels.shape[1:]:  # ids or classes
            raise ValueError(
                "Query and database labels must be of the same kind: both class ids "
                "or both multi-hot with the same number of classes."
            )
        self.queries, self.database = _as_words(queries), _as_words(database).T.copy()
        # Keys: dense class ids, or multi-hot rows as 64-bit words (relevant =
        # a shared bit); the database's word-major, as its codes.
        labels = (query_labels, database_labels)
        self.multi_hot = query_labels.ndim == 2
        if self.multi_hot:
            keys = [_as_words(np.packbits(y.astype(bool), axis=1)) for y in labels]
        else:
            _, dense = np.unique(np.concatenate(labels), return_inverse=True)
            dense = dense.astype(np.int32).reshape(-1, 1)
            keys = [dense[: self.num_queries], dense[self.num_queries :]]
        self.query_keys, self.database_keys = keys[0], keys[1].T.copy()

    def blocks(self, cuts=()):
        """Yields `(items, hits, found, precision_sums)` per block of queries:
        `items` / `hits[row, d]` the items / relevant ones at distance `d`,
        `found[row, c]` the relevant ones in the top `cuts[c]` (none: no ranking
        scan) and `precision_sums[row, c]` the precision summed at them."""
        cuts = np.asarray(cuts, dtype=np.int64).reshape(-1)
        threads = _threads()
        with ThreadPoolExecutor(threads) as pool:
            for start in range(0, self.num_queries, _BLOCK_ROWS):
                rows = min(_BLOCK_ROWS, self.num_queries - start)
                items, hits = np.zeros((2, rows, self.bits + 1), np.int64)
                found = np.zeros((rows, len(cuts)), np.int64)
                out = (items, hits, found, np.zeros((rows, len(cuts))))
                step = -(-rows // threads)
                rank = functools.partial(self._rank, out, start, rows, step, cuts)
                list(pool.map(rank, range(0, rows, step)))
                yield out

    def _rank(self, out, start, rows, step, cuts, offset):
        """Ranks rows `offset:offset + step` of a block (one thread's share)."""
        queries = slice(start + offset, start + min(offset + step, rows))
        _rank_rows(
            self.queries[queries],
            self.database,
            self.query_keys[queries],
            self.database_keys,
            self.multi_hot,
            cuts,
            tuple(array[offset : offset + step] for array in out),
        )

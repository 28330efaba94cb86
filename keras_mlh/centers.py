"""Hash centers: fixed, well-separated binary targets, one per class.

The construction follows the center-based hashing lineage (CSQ, MDSH):

1. The target minimum pairwise Hamming distance `d` is the Gilbert-Varshamov
   bound as MDSH computes it: the smallest `d` with
   `num_classes * sum_{i<d} C(bits, i) >= 2**bits`.
2. When `bits` is a power of two and `num_classes <= 2 * bits`, the rows of
   `[H; -H]` (H the Sylvester Hadamard matrix) are used: any two rows are at
   distance `bits / 2` or `bits`, which meets the bound for every such case.
3. Otherwise rows are drawn at random (seeded, balanced) and improved by a
   deterministic local search that flips the bit reducing the largest inner
   products the most, until every pair has inner product `<= bits - 2 d`
   (a step costs O(num_classes * bits); thousands of classes take seconds).
   A warning says when the target is not reached.
"""

import dataclasses
import heapq
import math
import warnings

import numpy as np

from keras_mlh.metrics.hamming_ranking import njit_cached

# The most classes hash centers are built for (ImageNet-21k has 21,841): the
# search costs about `classes**2 * bits` operations (seconds at 10,000 classes
# of 64 bits), and a larger count nearly always comes from sparse or stray
# label ids, not from real classes.
MAX_CLASSES = 25000
# Rows of the Gram matrix computed at once (memory: _BLOCK * classes floats).
_BLOCK = 1024


@dataclasses.dataclass(frozen=True)
class HashCenters:
    """Hash centers and how well separated they are.

    Attributes:
        centers: int8 array of shape `(num_classes, bits)` with values in
            `{-1, +1}`.
        min_distance: the smallest Hamming distance between two centers
            (`bits` when there is a single center).
        target_distance: the Gilbert-Varshamov target distance.
        method: `"hadamard"` or `"search"`.
    """

    centers: np.ndarray
    min_distance: int
    target_distance: int
    method: str

    @property
    def reached_target(self) -> bool:
        return self.min_distance >= self.target_distance


def gilbert_varshamov_distance(num_classes: int, bits: int) -> int:
    """Target minimum Hamming distance between `num_classes` centers of `bits`.

    Args:
        num_classes: number of centers.
        bits: code length.

    Returns:
        The smallest `d` with `num_classes * sum_{i<d} C(bits, i) >= 2**bits`,
        capped at `bits` (no two codes can be further apart).

    Example:
    >>> gilbert_varshamov_distance(10, 32)
    13
    """
    _validate(num_classes, bits)
    total, volume, d = 2**bits, 0, 0
    while num_classes * volume < total:
        volume += math.comb(bits, d)
        d += 1
    return min(max(d, 1), bits)


def min_hamming_distance(centers: np.ndarray) -> int:
    """Smallest pairwise Hamming distance between ±1 rows (`bits` if one row)."""
    # float32 is exact here (|inner products| <= bits); blocks of rows keep
    # memory at O(block * classes) instead of the whole Gram matrix.
    centers = np.asarray(centers, dtype=np.float32)
    bits = centers.shape[1]
    largest = -bits
    for start in range(0, len(centers), _BLOCK):
        gram = centers[start : start + _BLOCK] @ centers.T
        rows = np.arange(len(gram))
        gram[rows, rows + start] = -bits
        largest = max(largest, int(gram.max()))
    return (bits - largest) // 2


def check_centers(centers):
    """Hash centers (e.g. `hash_centers(...).centers`) as the losses take
    them: float32 `(num_classes, bits)` of ±1, or a `ValueError`."""
    centers = np.asarray(centers, dtype="float32")
    if centers.ndim != 2 or not np.all(np.abs(centers) == 1):
        raise ValueError(
            "`centers` must be a (num_classes, bits) array of ±1 values, e.g. "
            f"from `keras_mlh.hash_centers`. Received: shape={centers.shape}"
        )
    return centers


def hash_centers(
    num_classes: int, bits: int, seed: int = 0, max_iterations: int = 20000
) -> HashCenters:
    """Builds `num_classes` hash centers of `bits` bits.

    Args:
        num_classes: number of classes (one center each).
        bits: code length; any positive integer (the model asks for multiples
            of 8).
        seed: seed of the random construction; the same arguments always give
            the same centers.
        max_iterations: budget of the local search (bit flips).

    Returns:
        A `HashCenters` with the centers and the minimum distance reached.

    Example:
    >>> hc = hash_centers(10, 32)
    >>> hc.centers.shape, hc.min_distance >= hc.target_distance
    ((10, 32), True)
    """
    _validate(num_classes, bits)
    if num_classes > MAX_CLASSES:
        raise ValueError(
            f"num_classes={num_classes} is more classes than hash centers are "
            f"built for (at most {MAX_CLASSES}); such a count nearly always comes "
            "from sparse or stray class ids. Class ids must run from 0 to "
            "num_classes - 1: renumber them densely, e.g. with "
            "`np.unique(labels, return_inverse=True)`. "
            f"Received: num_classes={num_classes}, bits={bits}"
        )
    target = gilbert_varshamov_distance(num_classes, bits)
    # Hadamard rows are bits/2 apart, which meets the target except for very
    # few classes (e.g. 2 classes of 8 bits, where complements are better).
    if bits & (bits - 1) == 0 and num_classes <= 2 * bits and bits // 2 >= target:
        hadamard = _sylvester_hadamard(bits)
        centers = np.concatenate([hadamard, -hadamard])[:num_classes]
        method = "hadamard"
    else:
        centers = _search_centers(num_classes, bits, target, seed, max_iterations)
        method = "search"
    centers = centers.astype(np.int8)
    reached = min_hamming_distance(centers)
    if reached < target:
        warnings.warn(
            f"Hash centers for num_classes={num_classes}, bits={bits} reach a "
            f"minimum Hamming distance of {reached}, below the Gilbert-Varshamov "
            f"target {target}. They are usable; more bits give better separation.",
            stacklevel=2,
        )
    return HashCenters(centers, reached, target, method)


def _validate(num_classes, bits):
    for name, value in (("num_classes", num_classes), ("bits", bits)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"`{name}` must be an integer. Received: {name}={value!r}")
        if value < 1:
            raise ValueError(f"`{name}` must be positive. Received: {name}={value}")
    if bits < 63 and num_classes > 2**bits:
        raise ValueError(
            f"Cannot build {num_classes} distinct hash centers with {bits} bits: "
            f"there are only {2**bits} distinct codes. Use more bits. "
            f"Received: num_classes={num_classes}, bits={bits}"
        )


def _sylvester_hadamard(n):
    h = np.ones((1, 1), dtype=np.int64)
    while h.shape[0] < n:
        h = np.block([[h, h], [h, -h]])
    return h


def _search_centers(num_classes, bits, target, seed, max_iterations):
    rng = np.random.default_rng(seed)
    # Balanced rows (half +1, half -1) start closer to the bound than i.i.d. bits.
    base = np.where(np.arange(bits) < bits // 2, 1, -1)
    centers = np.stack([rng.permutation(base) for _ in range(num_classes)])
    centers = _make_distinct(centers, rng).astype(np.int8)
    limit = bits - 2 * target
    close = _ClosePairs(centers, limit)
    flips, best_flips, best_score = [], 0, close.score()
    for _ in range(max_iterations):
        if best_score[0] <= limit:
            break
        # Take a row of the closest pair and flip the bit that lowers that row's
        # total excess inner product the most. Only that row's inner products
        # change, so a step costs O(classes * bits), never the O(classes**2)
        # Gram matrix (which would not fit in memory for many classes).
        i, j = close.closest_pair()
        row = i if rng.random() < 0.5 else j
        inner, excess, spread = _flip_excess(centers, row, limit)
        score_of_flip = excess + 1e-3 * spread
        bit = rng.choice(np.flatnonzero(score_of_flip == score_of_flip.min()))
        flipped = inner - 2 * centers[row, bit] * centers[:, bit]
        flipped[row] = -bits
        close.update(row, inner, flipped)
        centers[row, bit] *= -1
        flips.append((row, bit))
        score = close.score()
        if score < best_score:
            best_flips, best_score = len(flips), score
    # Back to the best arrangement seen: undo the flips made after it.
    for row, bit in flips[best_flips:]:
        centers[row, bit] *= -1
    return centers


@njit_cached
def _flip_excess(centers, row, limit):
    """Inner products of `row` with every center and, per bit of `row`, what
    flipping it would leave: the sums over the other rows of
    `max(inner - limit, 0)` and of `max(inner, 0)`. O(classes * bits)."""
    classes, bits = centers.shape
    inner = np.empty(classes, np.int64)
    for r in range(classes):
        total = 0
        for b in range(bits):
            total += centers[r, b] * centers[row, b]
        inner[r] = total
    inner[row] = -bits
    excess = np.zeros(bits, np.int64)
    spread = np.zeros(bits, np.int64)
    for r in range(classes):
        # Flipping a bit moves an inner product by 2: rows at or below -2
        # stay at or below 0 and add to neither sum (the row itself too).
        if inner[r] < -1 or r == row:
            continue
        for b in range(bits):
            after = inner[r] - 2 * centers[row, b] * centers[r, b]
            if after > limit:
                excess[b] += after - limit
            if after > 0:
                spread[b] += after
    return inner, excess, spread


class _ClosePairs:
    """The pairs of centers whose inner product exceeds `limit`, by inner product.

    Holds the search's score, `(largest inner product, summed excess over
    limit)` (the largest is `limit` when no pair exceeds it), and the closest
    pair, the first in row-major order (what `argmax` of the Gram matrix gives).
    """

    def __init__(self, centers, limit):
        self.limit, self.excess = limit, 0
        self.levels = {}  # inner product -> (set of pairs, heap of pairs)
        exact = centers.astype(np.float32)  # exact: |inner products| <= bits
        for start in range(0, len(centers), _BLOCK):
            gram = exact[start : start + _BLOCK] @ exact.T
            rows, cols = np.nonzero(gram > limit)
            keep = cols > rows + start
            rows, cols = rows[keep], cols[keep]
            values = gram[rows, cols].astype(np.int64).tolist()
            starts = (rows + start).tolist()
            for i, j, value in zip(starts, cols.tolist(), values, strict=True):
                self._add((i, j), value)

    def _add(self, pair, value):
        members, heap = self.levels.setdefault(value, (set(), []))
        members.add(pair)
        heapq.heappush(heap, pair)
        self.excess += value - self.limit

    def _remove(self, pair, value):
        self.levels[value][0].remove(pair)  # the heap entry is dropped lazily
        self.excess -= value - self.limit

    def _largest(self):
        while self.levels:
            value = max(self.levels)
            if self.levels[value][0]:
                return value
            del self.levels[value]
        return None

    def score(self):
        largest = self._largest()
        return (self.limit if largest is None else largest, self.excess)

    def closest_pair(self):
        members, heap = self.levels[self._largest()]
        while heap[0] not in members:
            heapq.heappop(heap)
        return heap[0]

    def update(self, row, before, after):
        """Row `row`'s inner products change from `before` to `after`."""
        for j in np.flatnonzero(before > self.limit).tolist():
            self._remove((min(row, j), max(row, j)), int(before[j]))
        for j in np.flatnonzero(after > self.limit).tolist():
            self._add((min(row, j), max(row, j)), int(after[j]))


def _make_distinct(centers, rng):
    seen = set()
    for r in range(len(centers)):
        while centers[r].tobytes() in seen:
            centers[r] = rng.choice([-1, 1], size=centers.shape[1])
        seen.add(centers[r].tobytes())
    return centers

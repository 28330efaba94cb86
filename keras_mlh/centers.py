"""Hash centers, one per class (CSQ, MDSH): rows of `[H; -H]` (H Sylvester's
Hadamard matrix) where they reach the Gilbert-Varshamov distance, else seeded
balanced rows improved by a deterministic local search."""

import dataclasses
import heapq
import math
import warnings

import numpy as np

from keras_mlh.metrics.hamming_ranking import njit_cached
from keras_mlh_runtime.errors import check_positive_int

# ImageNet-21k has 21,841 classes; a larger count nearly always comes from
# sparse or stray label ids, and the search costs about `classes**2 * bits`.
MAX_CLASSES = 25000


@dataclasses.dataclass(frozen=True)
class HashCenters:
    """Hash centers: int8 ±1 `centers` `(num_classes, bits)`, the smallest
    Hamming distance between two `min_distance` (`bits` for one), the
    Gilbert-Varshamov `target_distance`, and `method` ("hadamard" or "search")."""

    centers: np.ndarray
    min_distance: int
    target_distance: int
    method: str

    @property
    def reached_target(self) -> bool:
        return self.min_distance >= self.target_distance


def gilbert_varshamov_distance(num_classes: int, bits: int) -> int:
    """The smallest `d` with `num_classes * sum_{i<d} C(bits, i) >= 2**bits`
    (capped at `bits`): the target distance between `num_classes` centers.

    Example:
    >>> gilbert_varshamov_distance(10, 32)
    13
    """
    num_classes = check_positive_int("num_classes", num_classes)
    bits = check_positive_int("bits", bits)  # a Python int: 2**bits never wraps
    if bits < 63 and num_classes > 2**bits:
        raise ValueError(
            f"Cannot build {num_classes} distinct hash centers with {bits} bits: "
            f"there are only {2**bits} distinct codes. Use more bits."
        )
    total, volume, d = 2**bits, 0, 0
    while num_classes * volume < total:
        volume += math.comb(bits, d)
        d += 1
    return min(max(d, 1), bits)


def _gram_blocks(centers):
    """Yields `(start, rows @ centers.T)` per block of rows of ±1 centers."""
    exact = np.asarray(centers, dtype=np.float32)  # exact: |inner| <= bits
    for start in range(0, len(exact), 1024):  # memory: 1024 * classes floats
        yield start, exact[start : start + 1024] @ exact.T


def min_hamming_distance(centers: np.ndarray) -> int:
    """Smallest pairwise Hamming distance of ±1 rows (`bits` for one row)."""
    bits = np.shape(centers)[1]
    largest = -bits
    for start, gram in _gram_blocks(centers):
        rows = np.arange(len(gram))
        gram[rows, rows + start] = -bits
        largest = max(largest, int(gram.max()))
    return (bits - largest) // 2


def hash_centers(
    num_classes: int, bits: int, seed: int = 0, max_iterations: int = 20000
) -> HashCenters:
    """Builds `num_classes` hash centers of `bits` bits; warns below the target.

    Args:
        seed: seed of the search; the same arguments give the same centers.
        max_iterations: budget of the local search (bit flips).

    Returns:
        A `HashCenters`.

    Example:
    >>> hc = hash_centers(10, 32)
    >>> hc.centers.shape, hc.min_distance >= hc.target_distance
    ((10, 32), True)
    """
    target = gilbert_varshamov_distance(num_classes, bits)  # checks both
    if num_classes > MAX_CLASSES:
        raise ValueError(
            f"num_classes={num_classes} is over the limit of hash centers (at most "
            f"{MAX_CLASSES}): renumber sparse class ids densely, e.g. with "
            "`np.unique(labels, return_inverse=True)`."
        )
    # Hadamard rows are bits/2 apart, which misses the target only for very
    # few classes (e.g. 2 classes of 8 bits, where complements are better).
    if bits & (bits - 1) == 0 and num_classes <= 2 * bits and bits // 2 >= target:
        hadamard = np.ones((1, 1), dtype=np.int8)
        while len(hadamard) < bits:
            hadamard = np.block([[hadamard, hadamard], [hadamard, -hadamard]])
        centers = np.concatenate([hadamard, -hadamard])[:num_classes]
        method = "hadamard"
    else:
        centers = _search_centers(num_classes, bits, target, seed, max_iterations)
        method = "search"
    reached = min_hamming_distance(centers)
    if reached < target:
        warnings.warn(
            f"Hash centers for num_classes={num_classes}, bits={bits} reach a "
            f"minimum Hamming distance of {reached}, below the Gilbert-Varshamov "
            f"target {target}. They are usable; more bits give better separation.",
            stacklevel=2,
        )
    return HashCenters(centers, reached, target, method)


def _search_centers(num_classes, bits, target, seed, max_iterations):
    rng = np.random.default_rng(seed)
    # Balanced rows (half +1, half -1) start closer to the bound than i.i.d. bits.
    base = np.where(np.arange(bits) < bits // 2, 1, -1)
    centers = np.stack([rng.permutation(base) for _ in range(num_classes)])
    seen = set()
    for r in range(num_classes):
        while centers[r].tobytes() in seen:
            centers[r] = rng.choice([-1, 1], size=bits)
        seen.add(centers[r].tobytes())
    centers = centers.astype(np.int8)
    limit = bits - 2 * target
    close = _ClosePairs(centers, limit)
    flips, best_flips, best_score = [], 0, close.score()
    for _ in range(max_iterations):
        if best_score[0] <= limit:
            break
        # Flip the bit of a row of the closest pair that lowers that row's
        # excess the most: only that row's inner products change, so a step
        # costs O(classes * bits), never the O(classes**2) Gram matrix.
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
    """`row`'s inner products and, per bit flipped, the other rows' summed
    `max(inner - limit, 0)` (excess) and `max(inner, 0)` (spread)."""
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
        # A flip moves an inner product by 2: rows at or below -2 stay <= 0.
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
    """Pairs `(i, j)`, `i < j`, of centers with inner product above `limit`;
    `score()` is `(largest inner product or limit, summed excess)`."""

    def __init__(self, centers, limit):
        self.limit, self.excess, self.pairs, self.heap = limit, 0, {}, []
        for start, gram in _gram_blocks(centers):
            rows, cols = np.nonzero(np.triu(gram > limit, k=start + 1))
            pairs = (rows + start, cols, gram[rows, cols].astype(np.int64))
            for i, j, value in np.stack(pairs, axis=1).tolist():
                self._add(i, j, value)

    def _add(self, i, j, value):
        self.pairs[i, j] = value
        heapq.heappush(self.heap, (-value, i, j))
        self.excess += value - self.limit

    def _top(self):
        # Heap entries of pairs that moved since are dropped when they surface.
        while self.heap and self.pairs.get(self.heap[0][1:]) != -self.heap[0][0]:
            heapq.heappop(self.heap)
        return self.heap[0] if self.heap else None

    def score(self):
        top = self._top()
        return (self.limit if top is None else -top[0], self.excess)

    def closest_pair(self):  # the first in row-major order, as `argmax`
        return self._top()[1:]

    def update(self, row, before, after):
        """Row `row`'s inner products change from `before` to `after`."""
        for j in np.flatnonzero(before > self.limit).tolist():
            self.excess -= self.pairs.pop((min(row, j), max(row, j))) - self.limit
        for j in np.flatnonzero(after > self.limit).tolist():
            self._add(min(row, j), max(row, j), int(after[j]))

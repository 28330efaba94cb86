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
   products the most, until every pair has inner product `<= bits - 2 d`.

The result reports the minimum distance actually reached; when the search does
not reach the target a warning says so (the centers are still usable, merely
less separated than the bound allows).
"""

import dataclasses
import math
import warnings

import numpy as np


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
    centers = np.asarray(centers, dtype=np.int64)
    bits = centers.shape[1]
    if len(centers) < 2:
        return bits
    gram = centers @ centers.T
    np.fill_diagonal(gram, -bits)
    return int((bits - gram.max()) // 2)


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

    Raises:
        ValueError: for non-positive arguments, or when more centers are asked
            for than there are distinct codes of `bits` bits.

    Example:
    >>> hc = hash_centers(10, 32)
    >>> hc.centers.shape, hc.min_distance >= hc.target_distance
    ((10, 32), True)
    """
    target = gilbert_varshamov_distance(num_classes, bits)
    # Hadamard rows are bits/2 apart, which meets the target except for very
    # few classes (e.g. 2 classes of 8 bits, where complements are better).
    if _is_power_of_two(bits) and num_classes <= 2 * bits and bits // 2 >= target:
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


def _is_power_of_two(n):
    return n >= 1 and n & (n - 1) == 0


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
    centers = _make_distinct(centers, rng)
    limit = bits - 2 * target
    gram = centers @ centers.T
    np.fill_diagonal(gram, -bits)
    best, best_score = centers.copy(), _score(gram, limit)
    for _ in range(max_iterations):
        if best_score[0] <= limit:
            break
        # Take a row of the closest pair and flip the bit that lowers that row's
        # total excess inner product the most; the Gram matrix is updated in
        # O(classes) instead of being recomputed.
        i, j = np.unravel_index(np.argmax(gram), gram.shape)
        row = i if rng.random() < 0.5 else j
        change = -2 * centers[row][None, :] * centers  # (classes, bits)
        new_inner = gram[row][:, None] + change
        new_inner[row] = -bits
        excess = np.maximum(new_inner - limit, 0).sum(axis=0)
        excess = excess + 1e-3 * np.maximum(new_inner, 0).sum(axis=0)
        bit = rng.choice(np.flatnonzero(excess == excess.min()))
        delta = change[:, bit]
        delta[row] = 0
        gram[row] += delta
        gram[:, row] += delta
        centers[row, bit] *= -1
        score = _score(gram, limit)
        if score < best_score:
            best, best_score = centers.copy(), score
    return best


def _score(gram, limit):
    worst = gram.max()
    return (int(worst), int(np.maximum(gram - limit, 0).sum()))


def _make_distinct(centers, rng):
    seen = set()
    for r in range(len(centers)):
        while centers[r].tobytes() in seen:
            centers[r] = rng.choice([-1, 1], size=centers.shape[1])
        seen.add(centers[r].tobytes())
    return centers

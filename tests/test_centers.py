import hashlib

import numpy as np
import pytest

from keras_mlh import centers as centers_module
from keras_mlh.centers import (
    MAX_CLASSES,
    _ClosePairs,
    _flip_excess,
    gilbert_varshamov_distance,
    hash_centers,
    min_hamming_distance,
)

pytestmark = pytest.mark.backend_independent  # numpy


@pytest.mark.parametrize(
    "classes, bits, expected",
    [
        (10, 16, 6),
        (10, 32, 13),
        (10, 64, 28),
        (100, 16, 4),
        (100, 32, 10),
        (100, 64, 24),
    ],
)
def test_gilbert_varshamov_matches_mdsh(classes, bits, expected):
    assert gilbert_varshamov_distance(classes, bits) == expected
    # numpy integers (e.g. read from a config array) give the same bound.
    assert gilbert_varshamov_distance(np.int64(classes), np.int64(bits)) == expected


def _brute_min_distance(centers):
    c = centers.astype(int)
    return min(
        int(np.sum(c[i] != c[j])) for i in range(len(c)) for j in range(i + 1, len(c))
    )


@pytest.mark.parametrize(
    "classes, bits, method",
    [
        (10, 16, "hadamard"),
        (10, 32, "hadamard"),
        (64, 32, "hadamard"),
        (100, 32, "search"),  # more classes than 2 * bits
        (10, 24, "search"),  # not a power of two
        (100, 48, "search"),
        (2, 8, "search"),  # Hadamard rows (distance 4) miss the target 5
        (200, 64, "search"),
    ],
)
def test_centers_reach_target_and_report_true_distance(classes, bits, method):
    result = hash_centers(classes, bits)
    assert result.centers.shape == (classes, bits)
    assert result.centers.dtype == np.int8
    assert set(np.unique(result.centers)) <= {-1, 1}
    assert result.method == method
    assert result.min_distance == _brute_min_distance(result.centers)
    assert result.min_distance >= result.target_distance
    assert result.reached_target


def test_centers_are_deterministic_per_seed():
    a = hash_centers(100, 32, seed=3).centers
    b = hash_centers(100, 32, seed=3).centers
    c = hash_centers(100, 32, seed=4).centers
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_unreachable_target_warns_and_reports():
    # 256 classes of 8 bits must use every code: distance 1 is all there is,
    # but a tiny iteration budget cannot always find a perfect arrangement for
    # harder cases; the warning path is exercised with zero iterations.
    with pytest.warns(UserWarning, match="below the Gilbert-Varshamov target"):
        result = hash_centers(40, 16, max_iterations=0)
    assert result.min_distance == min_hamming_distance(result.centers)
    assert not result.reached_target


def test_single_center():
    result = hash_centers(1, 8)
    assert result.min_distance == 8 and result.reached_target


def test_impossible_request_raises():
    with pytest.raises(ValueError, match="only 256 distinct codes"):
        hash_centers(300, 8)


@pytest.mark.parametrize("classes, bits", [(0, 16), (10, 0), (10, 2.5), (True, 8)])
def test_bad_arguments_raise(classes, bits):
    with pytest.raises(ValueError, match="must be"):
        hash_centers(classes, bits)


# sha256 (first 16 hex digits) of the centers the former O(classes**2) search
# built: the faster search must give bit-identical centers (and so the same
# trained codes) wherever the former one finished.
@pytest.mark.parametrize(
    "classes, bits, seed, digest",
    [
        (64, 32, 0, "5c0e4c4f5ac0f0bd"),  # Hadamard
        (128, 64, 0, "2e4c1505f977eeed"),  # Hadamard
        (2, 8, 0, "4c3207093ad5f4b2"),
        (10, 24, 0, "59e446e437c9bf51"),
        (100, 32, 0, "2ed249de87d59e81"),
        (100, 48, 3, "afcb1a5b96e2a8ac"),
        (200, 64, 0, "ad81ba53a9b0cfbe"),
        (500, 64, 0, "a0ec63762fd03687"),
    ],
)
def test_centers_are_unchanged(classes, bits, seed, digest):
    centers = hash_centers(classes, bits, seed=seed).centers
    assert hashlib.sha256(centers.tobytes()).hexdigest()[:16] == digest


def test_flip_excess_matches_the_full_table():
    rng = np.random.default_rng(0)
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(60, 17))
    limit, row = 3, 11
    inner, excess, spread = _flip_excess(centers, row, limit)
    c = centers.astype(np.int64)
    expected_inner = c @ c[row]
    expected_inner[row] = -17
    np.testing.assert_array_equal(inner, expected_inner)
    # What each single-bit flip of `row` leaves, one (classes, bits) table.
    after = expected_inner[:, None] - 2 * c[row][None, :] * c
    after[row] = -17
    np.testing.assert_array_equal(excess, np.maximum(after - limit, 0).sum(axis=0))
    np.testing.assert_array_equal(spread, np.maximum(after, 0).sum(axis=0))


def test_close_pairs_track_the_gram_matrix():
    rng = np.random.default_rng(1)
    centers = rng.choice(np.array([-1, 1], dtype=np.int8), size=(40, 12))
    limit = 2
    close = _ClosePairs(centers, limit)
    for _ in range(200):
        gram = centers.astype(np.int64) @ centers.T.astype(np.int64)
        np.fill_diagonal(gram, -12)
        excess = int(np.maximum(gram - limit, 0).sum()) // 2
        assert close.score() == (max(int(gram.max()), limit), excess)
        if gram.max() > limit:
            first = np.unravel_index(np.argmax(gram), gram.shape)
            assert close.closest_pair() == tuple(map(int, first))
        row, bit = rng.integers(40), rng.integers(12)
        before = gram[row].copy()
        centers[row, bit] *= -1
        after = centers.astype(np.int64) @ centers[row].astype(np.int64)
        after[row] = -12
        close.update(row, before, after)


def test_thousands_of_classes_reach_the_target():
    result = hash_centers(3000, 64)
    assert result.method == "search" and result.reached_target
    c = result.centers.astype(np.float32)
    gram = c @ c.T
    np.fill_diagonal(gram, -64)
    assert result.min_distance == (64 - int(gram.max())) // 2


def test_implausible_class_count_is_refused_before_any_work(monkeypatch):
    def no_work(*args):
        raise AssertionError("the search ran")

    monkeypatch.setattr(centers_module, "_search_centers", no_work)
    with pytest.raises(ValueError, match=r"num_classes=60000 .*renumber"):
        hash_centers(60000, 64)
    with pytest.raises(ValueError, match="at most 25000"):
        hash_centers(MAX_CLASSES + 1, 64)

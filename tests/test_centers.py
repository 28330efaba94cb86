import numpy as np
import pytest

from keras_mlh.centers import (
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

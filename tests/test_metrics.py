import itertools
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import import_blocker
from reference_metrics import average_precision, reference_mean_average_precision

from keras_mlh.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
)
from keras_mlh_runtime.codes import pack_codes

pytestmark = pytest.mark.backend_independent  # numpy and numba


def _random_case(seed, n_query=40, n_db=300, bits=8, classes=5, multi_label=False):
    # 8 bits over 300 items: every distance is shared by many items (ties).
    rng = np.random.default_rng(seed)
    q = np.where(rng.random((n_query, bits)) > 0.5, 1, -1).astype(np.int8)
    d = np.where(rng.random((n_db, bits)) > 0.5, 1, -1).astype(np.int8)
    if multi_label:
        ql = (rng.random((n_query, classes)) < 0.3).astype(np.float32)
        dl = (rng.random((n_db, classes)) < 0.3).astype(np.float32)
    else:
        ql, dl = rng.integers(0, classes, n_query), rng.integers(0, classes, n_db)
    return q, ql, d, dl


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("k", [None, 1, 5, 37, 300, 1000])
def test_map_equals_reference_loop(k, multi_label):
    for seed in range(3):
        case = _random_case(seed, multi_label=multi_label)
        expected = reference_mean_average_precision(*case, k=k)
        assert mean_average_precision(*case, k=k) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("bits, classes", [(72, 70), (128, 130)])
@pytest.mark.parametrize("multi_label", [False, True])
def test_wide_codes_and_many_classes_equal_reference_loop(bits, classes, multi_label):
    # Codes and multi-hot labels that span more than one 64-bit word, and a
    # code width (72) that is not a whole number of words.
    case = _random_case(
        7, n_db=500, bits=bits, classes=classes, multi_label=multi_label
    )
    for k in (None, 20):
        expected = reference_mean_average_precision(*case, k=k)
        assert mean_average_precision(*case, k=k) == pytest.approx(expected, abs=1e-9)


def test_class_ids_of_any_value_and_dtype():
    q, ql, d, dl = _random_case(8)
    expected = mean_average_precision(q, ql, d, dl)
    for mapping in (
        lambda x: x * 1_000_003 - 7,
        lambda x: x.astype(np.float32) * 3,
        lambda x: (x + 2**62).astype(np.uint64),
        lambda x: x[:, None],  # a column of class ids, as Keras often has them
    ):
        assert mean_average_precision(q, mapping(ql), d, mapping(dl)) == pytest.approx(
            expected, abs=1e-12
        )


def test_large_ids_of_mixed_dtypes_stay_distinct():
    # uint64 against int64 would meet in float64, where these two are equal.
    q, _, d, _ = _random_case(9)
    query_ids = np.full(len(q), 2**62 + 1, np.uint64)
    database_ids = np.full(len(d), 2**62, np.int64)
    assert mean_average_precision(q, query_ids, d, database_ids) == 0.0
    assert mean_average_precision(q, query_ids, d, database_ids + 1) == 1.0


def test_multi_hot_overlap_counts_beyond_the_label_dtype():
    # 256 shared classes overflow a uint8 dot product; relevance must not.
    q, _, d, _ = _random_case(10)
    ql = np.ones((len(q), 256), np.uint8)
    dl = np.ones((len(d), 256), np.uint8)
    assert mean_average_precision(q, ql, d, dl) == 1.0
    assert reference_mean_average_precision(q, ql, d, dl) == 1.0


def test_packed_and_sign_codes_give_the_same_map():
    q, ql, d, dl = _random_case(4, bits=16)
    assert mean_average_precision(
        pack_codes(q), ql, pack_codes(d), dl
    ) == pytest.approx(mean_average_precision(q, ql, d, dl), abs=1e-12)


def test_map_in_small_blocks_equals_one_block(monkeypatch):
    import keras_mlh.metrics.hamming_ranking as hamming_ranking

    case = _random_case(5)
    whole = [
        mean_average_precision(*case, k=50),
        precision_at_k(*case, 3),
        recall_at_k(*case, 50),
    ]
    monkeypatch.setattr(hamming_ranking, "_BLOCK_ROWS", 3)
    monkeypatch.setattr(hamming_ranking, "_threads", lambda: 2)
    blocks = [
        mean_average_precision(*case, k=50),
        precision_at_k(*case, 3),
        recall_at_k(*case, 50),
    ]
    assert blocks == pytest.approx(whole, abs=1e-12)


def _brute_force_tie_average(q, ql, d, dl, k):
    """Average of AP@k over every order of the items tied at each distance."""
    bits = q.shape[1]
    scores = []
    for i in range(len(q)):
        distances = (bits - d.astype(int) @ q[i].astype(int)) // 2
        groups = [np.flatnonzero(distances == v) for v in np.unique(distances)]
        aps = []
        for orders in itertools.product(*(itertools.permutations(g) for g in groups)):
            ranked = np.concatenate(orders)[:k]
            if ql.ndim == 2:
                rel = (dl[ranked] @ ql[i]) > 0
            else:
                rel = dl[ranked] == ql[i]
            aps.append(average_precision(rel))
        scores.append(np.mean(aps))
    return float(np.mean(scores))


@pytest.mark.parametrize("multi_label", [False, True])
@pytest.mark.parametrize("k", [None, 1, 2, 3, 5])
def test_tie_average_equals_brute_force_over_orderings(k, multi_label):
    for seed in range(4):
        case = _random_case(
            seed, n_query=4, n_db=7, bits=8, classes=3, multi_label=multi_label
        )
        # 2 bits of difference at most: few distance values, many ties.
        q, ql, d, dl = case
        d[:, 2:] = q[0, 2:]
        q[:, 2:] = q[0, 2:]
        expected = _brute_force_tie_average(q, ql, d, dl, 7 if k is None else k)
        value = mean_average_precision(q, ql, d, dl, k=k, tie_breaking="average")
        assert value == pytest.approx(expected, abs=1e-9)


def test_cut_offs_as_numpy_values_and_bad_lists():
    q, ql, d, dl = _random_case(11)
    assert precision_at_k(q, ql, d, dl, np.array(5)) == precision_at_k(q, ql, d, dl, 5)
    assert recall_at_k(q, ql, d, dl, np.array([5, 50])) == recall_at_k(
        q, ql, d, dl, [5, 50]
    )
    for bad in ([3, None], [None], None, [], [2.5]):
        with pytest.raises(ValueError, match="`k` must be a positive integer"):
            precision_at_k(q, ql, d, dl, bad)


def test_precision_and_recall_at_k():
    q = np.array([[1] * 8])
    d = np.array([[1] * 8, [-1] * 8, [1] * 7 + [-1], [-1] + [1] * 7])
    ql, dl = np.array([0]), np.array([0, 0, 1, 0])
    # Ranking: item 0 (d=0), items 2, 3 (d=1, stable), item 1 (d=8).
    assert precision_at_k(q, ql, d, dl, 1) == 1.0
    assert precision_at_k(q, ql, d, dl, [2, 3]) == {2: 0.5, 3: pytest.approx(2 / 3)}
    assert recall_at_k(q, ql, d, dl, 3) == pytest.approx(2 / 3)
    assert recall_at_k(q, ql, d, dl, [4]) == {4: 1.0}


def test_precision_recall_curve_and_radius_precision():
    q = np.array([[1] * 8, [-1] * 8])
    d = np.array([[1] * 8, [1] * 7 + [-1], [-1] * 8])
    ql, dl = np.array([0, 1]), np.array([0, 1, 1])
    curve = precision_recall_curve(q, ql, d, dl)
    assert list(curve["radius"]) == list(range(9))
    # Radius 0: query 0 finds item 0 (relevant); query 1 finds item 2 (relevant).
    assert curve["precision"][0] == 1.0 and curve["recall"][0] == pytest.approx(0.75)
    # Radius 1: query 0 also gets item 1 (not relevant).
    assert curve["precision"][1] == pytest.approx((0.5 + 1.0) / 2)
    assert curve["recall"][8] == 1.0
    assert precision_within_radius(q, ql, d, dl, radius=1) == pytest.approx(0.75)


def test_radius_precision_counts_empty_retrievals_as_zero():
    q = np.array([[1] * 8])
    d = np.array([[-1] * 8])
    assert precision_within_radius(q, [0], d, [0], radius=2) == 0.0
    curve = precision_recall_curve(q, [0], d, [0])
    assert np.isnan(curve["precision"][2]) and curve["precision"][8] == 1.0


@pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="reads Linux's VmHWM"
)
def test_memory_stays_bounded_at_scale():
    """10,000 x 100,000 codes: the metric call raises peak memory by a few
    MB, where even one block of 1,024 queries' int64 distances to the
    database would take 800 MB. (VmHWM, not ru_maxrss: the latter keeps the
    forked pytest worker's peak across exec.)"""
    script = """
import numpy as np
from keras_mlh.metrics import mean_average_precision
def peak_mb():
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024
rng = np.random.default_rng(0)
q = rng.integers(0, 256, (10000, 8), dtype=np.uint8)
d = rng.integers(0, 256, (100000, 8), dtype=np.uint8)
q_labels, d_labels = rng.integers(0, 10, 10000), rng.integers(0, 10, 100000)
mean_average_precision(q[:2], q_labels[:2], d[:5], d_labels[:5])  # loads the kernel
before = peak_mb()
value = mean_average_precision(q, q_labels, d, d_labels, k=100)
growth = peak_mb() - before
print(value, growth)
assert 0 < value < 1 and growth < 200, growth
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize(
    "change, match",
    [
        ({"database_codes": np.ones((3, 16))}, "16"),
        ({"query_labels": np.zeros(5)}, "one label"),
        ({"query_codes": np.full((2, 8), 2)}, "±1"),
        ({"query_codes": np.ones((2, 12))}, "multiple of 8"),
        ({"query_codes": np.ones((2, 8), np.float32) * np.nan}, "NaN"),
        ({"query_labels": np.zeros((2, 3))}, "same kind"),
        (
            {"query_labels": np.full((2, 3), 0.5), "database_labels": np.ones((3, 3))},
            "only 0 and 1",
        ),
        ({"query_codes": np.ones((0, 8))}, "at least one query"),
        ({"database_codes": np.ones((0, 8)), "database_labels": []}, "at least one"),
        ({"query_labels": np.array([0.0, np.nan])}, "whole numbers"),
        ({"query_labels": np.array([0.5, 1.0])}, "whole numbers"),
        ({"query_labels": np.array([2**64 - 1, 0], np.uint64)}, "fit in int64"),
        ({"k": 0}, "positive integer"),
        ({"k": 2.5}, "positive integer"),
        ({"tie_breaking": "random"}, "tie_breaking"),
    ],
)
def test_bad_input(change, match):
    args = {
        "query_codes": np.ones((2, 8)),
        "query_labels": np.zeros(2),
        "database_codes": np.ones((3, 8)),
        "database_labels": np.zeros(3),
    }
    args.update(change)
    with pytest.raises(ValueError, match=match):
        mean_average_precision(**args)


def test_metrics_work_where_numba_cannot_cache():
    """A read-only install with no writable cache folder compiles in memory
    instead of failing at import."""
    script = """
import numpy as np
from keras_mlh.metrics import hamming_ranking, mean_average_precision
assert hamming_ranking._rank_rows._cache.__class__.__name__ == "NullCache"
codes = np.where(np.random.default_rng(0).random((10, 16)) > 0.5, 1, -1)
print(mean_average_precision(codes, np.zeros(10), codes, np.zeros(10)))
"""
    # IPython's locator is the only one left, and it declines outside IPython.
    env = dict(
        os.environ,
        NUMBA_CACHE_LOCATOR_CLASSES="numba.core.caching.IPythonCacheLocator",
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["1.0"]


def test_metrics_import_without_tensorflow():
    script = (
        import_blocker(("tensorflow", "keras"))
        + """
import numpy as np
import keras_mlh.metrics
from keras_mlh import HammingIndex, pack_codes, mean_average_precision
codes = np.where(np.random.default_rng(0).random((10, 16)) > 0.5, 1, -1)
index = HammingIndex(16); index.add(codes)
print(index.search(codes[:1], 1)[1][0, 0],
      round(keras_mlh.metrics.mean_average_precision(codes, np.zeros(10), codes,
                                                     np.zeros(10)), 3))
"""
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["0", "1.0"]

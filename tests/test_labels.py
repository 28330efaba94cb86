"""`keras_mlh.labels`: the one reading of label arrays.

`(n,)` and `(n, 1)` are class ids, more columns multi-hot rows; training,
the objective and the metrics all read labels through it.
"""

import subprocess
import sys

import numpy as np
import pytest

from keras_mlh.datasets import from_arrays
from keras_mlh.labels import check_labels, is_class_id_column
from keras_mlh.metrics import mean_average_precision

pytestmark = pytest.mark.backend_independent  # label arrays

CODES = np.array([[1] * 8, [1] * 8])  # two identical 8-bit codes


@pytest.mark.parametrize(
    "shape, ids",
    [((5,), True), ((5, 1), True), ((None, 1), True), ((5, 2), False)],
)
def test_is_class_id_column(shape, ids):
    assert is_class_id_column(shape) is ids


def test_a_column_is_class_ids_in_the_metrics():
    # Query [[0]] is class 0, relevant to database item 0 only, which ties
    # with item 1 at distance 0 and comes first: average precision 1.
    score = mean_average_precision(CODES[:1], [[0]], CODES, [[0], [1]])
    assert score == pytest.approx(1.0)


def test_a_column_is_class_ids_in_training_with_one_class():
    # The reading no longer depends on num_classes: before, num_classes=1
    # made [[0], [0]] a multi-hot column meaning "no class".
    ids = check_labels(np.array([[0], [0]]), num_classes=1)
    assert ids.shape == (2,) and ids.dtype == np.int64
    with pytest.raises(ValueError, match=r"class ids in \[0, 1\)"):
        check_labels(np.array([[0], [1]]), num_classes=1)


def test_a_column_is_class_ids_in_the_objective():
    from keras import ops

    from keras_mlh.losses.mlh_objective import multi_hot

    rows = ops.convert_to_numpy(multi_hot(np.array([[0], [0]]), num_classes=1))
    np.testing.assert_array_equal(rows, [[1.0], [1.0]])


def test_a_column_is_class_ids_in_the_datasets():
    images = np.zeros((10, 8, 8, 1), np.uint8)
    data = from_arrays(images, np.arange(10).reshape(-1, 1) % 2, num_queries=2)
    assert data.y_train.ndim == 1 and data.num_classes == 2


def test_the_metrics_do_not_import_the_datasets():
    code = (
        "import sys, keras_mlh.metrics\n"
        "print(any(m.startswith('keras_mlh.datasets') for m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["False"], done.stderr[-2000:]

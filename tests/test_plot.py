import matplotlib.image
import numpy as np
import pytest

from keras_mlh.metrics import precision_at_k, precision_recall_curve
from keras_mlh.plot import (
    plot_bit_balance,
    plot_history,
    plot_pr_curve,
    plot_precision_at_k,
)

pytestmark = pytest.mark.backend_independent  # matplotlib


def _case():
    rng = np.random.default_rng(0)
    q = np.where(rng.random((20, 16)) > 0.5, 1, -1)
    d = np.where(rng.random((100, 16)) > 0.5, 1, -1)
    return q, rng.integers(0, 3, 20), d, rng.integers(0, 3, 100)


def _check_png(path, width, height):
    image = matplotlib.image.imread(path)
    assert image.shape[:2] == (height, width)
    assert image.std() > 0.01  # something is drawn, not a blank canvas


def test_pr_curve_single_and_several(tmp_path):
    curve = precision_recall_curve(*_case())
    _check_png(plot_pr_curve(curve, tmp_path / "pr.png"), 640, 480)
    path = plot_pr_curve({"mlh": curve, "center": curve}, tmp_path / "sub" / "pr2.png")
    _check_png(path, 640, 480)


def test_precision_at_k(tmp_path):
    values = precision_at_k(*_case(), k=[1, 5, 10, 50])
    _check_png(plot_precision_at_k(values, tmp_path / "pk.png"), 640, 480)


def test_history(tmp_path):
    history = {
        "loss": [3.0, 2.0, 1.5],
        "center_loss": [1.0, 0.5, 0.4],
        "val_loss": [3.2, 2.4, 2.0],
        "val_map": [0.5, 0.7, 0.8],
        "bit_balance": [0.9, 0.92, 0.95],
    }
    _check_png(plot_history(history, tmp_path / "history.png"), 1100, 420)


def test_bit_balance(tmp_path):
    codes = _case()[0]
    _check_png(plot_bit_balance(codes, tmp_path / "bits.png"), 640, 480)


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="history"):
        plot_history({}, tmp_path / "h.png")
    with pytest.raises(ValueError, match="curves"):
        plot_pr_curve([1, 2], tmp_path / "p.png")
    with pytest.raises(ValueError, match="±1"):
        plot_bit_balance(np.full((2, 8), 3), tmp_path / "b.png")

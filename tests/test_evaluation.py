import json

import matplotlib.image
import numpy as np
import pytest

from keras_mlh.codes import pack_codes
from keras_mlh.evaluation import retrieval_report
from keras_mlh.metrics import mean_average_precision, precision_at_k


def _case(seed=0, queries=30, database=200, bits=16):
    rng = np.random.default_rng(seed)
    q = np.where(rng.random((queries, bits)) > 0.5, 1, -1).astype(np.int8)
    d = np.where(rng.random((database, bits)) > 0.5, 1, -1).astype(np.int8)
    return q, rng.integers(0, 4, queries), d, rng.integers(0, 4, database)


def test_report_numbers_match_the_metrics():
    case = _case()
    report = retrieval_report(*case, cutoffs=(1, 10, 100, 5000))
    assert report["map"] == mean_average_precision(*case)
    assert report["map_k"] is None
    # Cut-offs beyond the database are dropped.
    assert list(report["precision_at_k"]) == ["1", "10", "100"]
    assert report["precision_at_k"]["10"] == precision_at_k(*case, 10)
    assert len(report["pr_curve"]["radius"]) == 17
    assert report["num_queries"] == 30 and report["num_database"] == 200
    json.dumps(report)  # serializable: NaN precisions became None
    assert "files" not in report


def test_report_accepts_packed_codes_and_map_at_k():
    q, ql, d, dl = _case(1)
    report = retrieval_report(pack_codes(q), ql, pack_codes(d), dl, k=50)
    assert report["map_k"] == 50
    assert report["map"] == pytest.approx(mean_average_precision(q, ql, d, dl, k=50))


def test_report_writes_json_and_plots(tmp_path):
    history = {"loss": [2.0, 1.0], "center_loss": [1.5, 0.7], "val_map": [0.3, 0.5]}
    report = retrieval_report(*_case(), out_dir=tmp_path / "eval", history=history)
    files = report["files"]
    assert set(files) == {
        "pr_curve",
        "precision_at_k",
        "bit_balance",
        "history",
        "report",
    }
    saved = json.loads(open(files["report"]).read())
    assert saved["map"] == report["map"]
    for name in ("pr_curve", "precision_at_k", "bit_balance", "history"):
        image = matplotlib.image.imread(files[name])
        assert image.shape[0] > 100 and image.std() > 0.01


def test_report_without_history_has_no_history_plot(tmp_path):
    report = retrieval_report(*_case(), out_dir=tmp_path)
    assert "history" not in report["files"]
    assert not (tmp_path / "history.png").exists()


def test_report_rejects_label_mismatch():
    q, ql, d, dl = _case()
    with pytest.raises(ValueError):
        retrieval_report(q, ql[:-1], d, dl)

import json
import os

import matplotlib.image
import numpy as np
import pytest

from keras_mlh.evaluation import bit_balance, retrieval_report
from keras_mlh.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_within_radius,
)
from keras_mlh_runtime.codes import pack_codes

# Every test but the last is `backend_independent` (numpy metrics on given
# codes); the last loads a model and encodes, so it runs on each backend.


def _case(seed=0, queries=30, database=200, bits=16):
    rng = np.random.default_rng(seed)
    q = np.where(rng.random((queries, bits)) > 0.5, 1, -1).astype(np.int8)
    d = np.where(rng.random((database, bits)) > 0.5, 1, -1).astype(np.int8)
    return q, rng.integers(0, 4, queries), d, rng.integers(0, 4, database)


@pytest.mark.backend_independent
def test_report_numbers_match_the_metrics():
    case = _case()
    report = retrieval_report(*case, cutoffs=(1, 10, 100, 5000))
    assert report["map"] == mean_average_precision(*case)
    assert report["map_k"] == "all"
    assert report["tie_breaking"] == "stable"
    assert report["precision_within_radius"] == {
        "radius": 2,
        "value": precision_within_radius(*case, radius=2),
    }
    assert report["bits"] == 16
    # Cut-offs beyond the database are dropped.
    assert list(report["precision_at_k"]) == ["1", "10", "100"]
    assert report["precision_at_k"]["10"] == precision_at_k(*case, 10)
    assert report["pr_curve"]["radius"] == list(range(17))
    assert all(type(r) is int for r in report["pr_curve"]["radius"])
    assert report["num_queries"] == 30 and report["num_database"] == 200
    json.dumps(report)  # serializable: NaN precisions became None
    assert "files" not in report


@pytest.mark.backend_independent
def test_report_accepts_packed_codes_and_map_at_k():
    q, ql, d, dl = _case(1)
    report = retrieval_report(pack_codes(q), ql, pack_codes(d), dl, k=50)
    assert report["map_k"] == 50
    assert report["map"] == pytest.approx(mean_average_precision(q, ql, d, dl, k=50))


@pytest.mark.backend_independent
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
    assert report["plots"] == [
        "pr_curve.png",
        "precision_at_k.png",
        "bit_balance.png",
        "history.png",
    ]
    saved = json.loads(open(files["report"]).read())
    assert saved == report
    assert sorted(os.listdir(tmp_path / "eval")) == sorted(
        [*report["plots"], "report.json"]
    )
    for name in ("pr_curve", "precision_at_k", "bit_balance", "history"):
        image = matplotlib.image.imread(files[name])
        assert image.shape[0] > 100 and image.std() > 0.01


@pytest.mark.backend_independent
def test_report_without_history_has_no_history_plot(tmp_path):
    report = retrieval_report(*_case(), out_dir=tmp_path)
    assert "history" not in report["files"]
    assert not (tmp_path / "history.png").exists()


@pytest.mark.backend_independent
def test_report_rejects_label_mismatch():
    q, ql, d, dl = _case()
    with pytest.raises(ValueError):
        retrieval_report(q, ql[:-1], d, dl)


@pytest.mark.backend_independent
def test_report_radius_and_tie_breaking():
    case = _case(2)
    report = retrieval_report(*case, radius=4, tie_breaking="average")
    assert report["precision_within_radius"] == {
        "radius": 4,
        "value": precision_within_radius(*case, radius=4),
    }
    assert report["tie_breaking"] == "average"
    assert report["map"] == pytest.approx(
        mean_average_precision(*case, tie_breaking="average")
    )
    assert report["map"] != retrieval_report(*case)["map"]


@pytest.mark.backend_independent
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"radius": -1}, "radius"),
        ({"tie_breaking": "random"}, "tie_breaking"),
        ({"metadata": {"map": 1.0}}, "metadata"),
    ],
)
def test_report_rejects_bad_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        retrieval_report(*_case(), **kwargs)


@pytest.mark.backend_independent
def test_report_bit_balance_of_the_database_codes():
    q, ql, d, dl = _case(3, database=100, bits=8)
    d[:, 0] = 1  # always +1: deviation 0.5 for this bit
    d[:, 1] = np.where(np.arange(100) % 2 == 0, 1, -1)  # balanced: 0
    report = retrieval_report(q, ql, d, dl)
    expected = np.abs((d > 0).mean(0) - 0.5).mean()
    assert report["bit_balance_mean_abs_deviation"] == pytest.approx(expected)
    packed = retrieval_report(pack_codes(q), ql, pack_codes(d), dl)
    assert packed["bits"] == 8
    assert packed["bit_balance_mean_abs_deviation"] == pytest.approx(expected)


@pytest.mark.backend_independent
def test_report_metadata_is_recorded(tmp_path):
    report = retrieval_report(
        *_case(), out_dir=tmp_path, metadata={"model": "m.keras", "data": "s.npz"}
    )
    assert (report["model"], report["data"]) == ("m.keras", "s.npz")
    saved = json.loads((tmp_path / "report.json").read_text())
    assert (saved["model"], saved["data"]) == ("m.keras", "s.npz")


@pytest.mark.backend_independent
def test_report_writes_all_files_or_none(tmp_path, monkeypatch):
    import keras_mlh.plot

    out = tmp_path / "eval"
    out.mkdir()
    (out / "report.json").write_text('{"previous": true}')

    def broken(history, path):
        with open(path, "wb") as f:
            f.write(b"half a png")
        raise RuntimeError("disk full")

    monkeypatch.setattr(keras_mlh.plot, "plot_history", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        retrieval_report(*_case(), out_dir=out, history={"loss": [1.0, 0.5]})
    # The earlier report is untouched and no plot or temporary file is left.
    assert os.listdir(out) == ["report.json"]
    assert (out / "report.json").read_text() == '{"previous": true}'
    # In a new folder: no file at all.
    with pytest.raises(RuntimeError):
        retrieval_report(
            *_case(), out_dir=tmp_path / "new" / "eval", history={"loss": [1.0]}
        )
    assert os.listdir(tmp_path / "new" / "eval") == []


@pytest.mark.backend_independent
def test_seen_unseen_map_equals_map_on_the_sub_splits():
    from keras_mlh.evaluation import seen_unseen_map
    from keras_mlh.metrics import mean_average_precision

    rng = np.random.default_rng(0)
    q_codes, db_codes = rng.choice([-1, 1], (30, 16)), rng.choice([-1, 1], (90, 16))
    q_labels, db_labels = rng.integers(0, 5, 30), rng.integers(0, 5, 90)
    result = seen_unseen_map(q_codes, q_labels, db_codes, db_labels, [3, 4], k=20)
    seen_q, seen_db = q_labels < 3, db_labels < 3
    for key, queries, items in (
        ("seen@seen", seen_q, seen_db),
        ("seen@all", seen_q, np.ones(90, bool)),
        ("unseen@unseen", ~seen_q, ~seen_db),
        ("unseen@all", ~seen_q, np.ones(90, bool)),
    ):
        expected = mean_average_precision(
            q_codes[queries], q_labels[queries], db_codes[items], db_labels[items], k=20
        )
        assert result[key] == pytest.approx(expected), key
    assert result["unseen_classes"] == [3, 4]
    assert result["num_queries"]["seen"] == int(seen_q.sum())


@pytest.mark.backend_independent
def test_the_report_needs_neither_faiss_nor_tensorflow():
    from helpers import run_python

    run_python(
        "import sys\n"
        "import keras_mlh.evaluation\n"
        "loaded = {'faiss', 'tensorflow', 'keras'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )


@pytest.mark.backend_independent
def test_bit_balance_of_codes_in_any_form():
    codes = np.where(np.random.default_rng(5).random((40, 16)) > 0.5, 1, -1)
    codes[:, 0] = 1
    expected = (codes > 0).mean(0)
    np.testing.assert_allclose(bit_balance(codes), expected)
    np.testing.assert_allclose(bit_balance(pack_codes(codes)), expected)
    np.testing.assert_allclose(bit_balance((codes > 0).astype(np.int64)), expected)
    assert bit_balance(codes)[0] == 1.0
    with pytest.raises(ValueError, match="multiple of 8"):
        bit_balance(np.ones((3, 12)))


def test_evaluate_run_reports_the_codes_of_its_model(tmp_path):
    import keras

    import keras_mlh
    from keras_mlh.evaluation import evaluate_run, seen_unseen_map

    keras.utils.set_random_seed(0)
    model = keras_mlh.MLH(num_classes=4, bits=16)
    model.build((None, 8, 8, 1))
    model.save(tmp_path / "model.keras")
    rng = np.random.default_rng(0)
    split = {
        "x_query": rng.integers(0, 256, (12, 8, 8, 1), np.uint8),
        "y_query": np.arange(12) % 4,
        "x_database": rng.integers(0, 256, (40, 8, 8, 1), np.uint8),
        "y_database": np.arange(40) % 4,
        "unseen_classes": np.array([3]),
    }
    np.savez(tmp_path / "split.npz", **split)
    paths = {"model": tmp_path / "model.keras", "data": tmp_path / "split.npz"}
    report = evaluate_run(**paths, out=tmp_path / "eval", verbose=0)
    codes = [model.encode(split[f"x_{side}"]) for side in ("query", "database")]
    args = (codes[0], split["y_query"], codes[1], split["y_database"])
    assert report["map"] == retrieval_report(*args)["map"]
    assert report["seen_unseen"] == seen_unseen_map(*args, [3])
    assert report["data"] == str(paths["data"])
    written = json.loads((tmp_path / "eval" / "report.json").read_text())
    assert written["map"] == report["map"]
    with pytest.raises(ValueError, match="report.json' exists; pass --overwrite"):
        evaluate_run(**paths, out=tmp_path / "eval", verbose=0)

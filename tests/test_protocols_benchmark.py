"""The protocol benchmark (`benchmarks/protocols.py`): its data, its table, its
resumable JSON. Numbers are never asserted: benchmarks are read by people."""

import json
import os
import sys

import numpy as np
import pytest

BENCHMARKS = os.path.join(os.path.dirname(os.path.dirname(__file__)), "benchmarks")


@pytest.fixture
def protocols(monkeypatch):
    monkeypatch.syspath_prepend(BENCHMARKS)
    sys.modules.pop("protocols", None)
    import protocols

    return protocols


@pytest.mark.end_to_end
def test_quick_run_writes_rows_and_table_then_resumes(protocols, tmp_path, monkeypatch):
    argv = ["--quick", "--out", str(tmp_path), "--modes", "mlh", "center"]
    assert protocols.main(argv) == 0
    rows = json.loads((tmp_path / "protocols_quick.json").read_text())
    assert {(r["protocol"], r["mode"], r["bits"], r["seed"]) for r in rows} == {
        (p, m, 16, 0)
        for p in ("mnist5k-unseen", "mnist5k-multilabel")
        for m in ("mlh", "center")
    }
    for row in rows:
        assert 0.0 <= row["map"] <= 1.0
        assert row["config"]["model"]["mode"] == row["mode"]
        assert row["config"]["model"]["bits"] == 16
        assert row["config"]["training"]["epochs"] == row["epochs"] == 1
        assert row["config"]["protocol"]["split_seed"] == 0
    unseen = [r for r in rows if r["protocol"] == "mnist5k-unseen"]
    assert all(
        {"seen@seen", "seen@all", "unseen@unseen", "unseen@all"}
        <= set(r["seen_unseen"])
        for r in unseen
    )
    multilabel = [r for r in rows if r["protocol"] == "mnist5k-multilabel"]
    assert all("seen_unseen" not in r for r in multilabel)
    assert multilabel[0]["config"]["protocol"]["composite"]["relevance"]
    table = (tmp_path / "protocols_quick.md").read_text()
    assert "## mnist5k-unseen" in table and "## mnist5k-multilabel" in table
    assert "| mlh − center | mlh − pairwise |" in table
    assert "| mnist5k-multilabel | 16 | 1 | " in table  # the summary (README) table
    assert "| 16 | 1 | defaults | mlh |" in table  # the seen/unseen table
    import matplotlib.image

    chart = matplotlib.image.imread(tmp_path / "protocols_quick.png")
    assert chart.ndim == 3 and chart.shape[0] > 100 and chart.std() > 0

    # A second run trains nothing that is already in the JSON...
    def must_not_train(*args):
        raise AssertionError(f"trained again: {args[1:]}")

    monkeypatch.setattr(protocols, "run_one", must_not_train)
    assert protocols.main(argv) == 0
    assert json.loads((tmp_path / "protocols_quick.json").read_text()) == rows

    # ...and only what is missing when the grid grows.
    trained = []

    def fake_run(protocol, mode, bits, seed, epochs, overrides):
        trained.append((protocol.name, mode))
        return {"protocol": protocol.name, "mode": mode, "bits": bits, "seed": seed,
                "epochs": epochs, "map": 0.5, "train_seconds": 0.0,
                "config": {"protocol": protocol.config}}  # fmt: skip

    monkeypatch.setattr(protocols, "run_one", fake_run)
    assert protocols.main([*argv, "pairwise"]) == 0
    assert trained == [
        ("mnist5k-unseen", "pairwise"),
        ("mnist5k-multilabel", "pairwise"),
    ]
    assert len(json.loads((tmp_path / "protocols_quick.json").read_text())) == 6


@pytest.mark.backend_independent
def test_composites_show_exactly_the_labelled_digits(protocols):
    # Class c's digits are flat tiles of value 20 * (c + 1): after pooling,
    # each 14x14 quadrant is one class's value or black.
    labels = np.repeat(np.arange(10), 5)
    images = np.repeat(20 * (labels + 1), 28 * 28).reshape(50, 28, 28, 1)
    x, y = protocols.multilabel_composites(images.astype(np.uint8), labels, 200, 3)
    assert x.shape == (200, 28, 28, 1) and x.dtype == np.uint8
    assert y.shape == (200, 10) and set(y.sum(axis=1)) == {2.0, 3.0}
    for image, label in zip(x[..., 0], y, strict=True):
        quadrants = [image[r : r + 14, c : c + 14] for r in (0, 14) for c in (0, 14)]
        assert all(q.min() == q.max() for q in quadrants)
        shown = sorted(int(q[0, 0]) // 20 - 1 for q in quadrants if q[0, 0])
        assert shown == np.flatnonzero(label).tolist()
    again, _ = protocols.multilabel_composites(images.astype(np.uint8), labels, 200, 3)
    other, _ = protocols.multilabel_composites(images.astype(np.uint8), labels, 200, 4)
    assert np.array_equal(x, again) and not np.array_equal(x, other)
    with pytest.raises(ValueError, match="digits"):
        protocols.multilabel_composites(images, labels, 5, 0, digits=(2, 5))


@pytest.mark.backend_independent
def test_protocol_data_is_built_with_the_library_splits(protocols):
    # The full-size split (no training here): 400 database digits per class.
    small = protocols.make_protocol("mnist5k-small-train", seed=1)
    assert np.bincount(small.data.y_train, minlength=10).tolist() == [100] * 10
    assert len(small.data.x_database) == 4000  # the whole database is searched
    database = {image.tobytes() for image in small.data.x_database}
    assert all(image.tobytes() in database for image in small.data.x_train)
    unseen = protocols.make_protocol("mnist5k-unseen", seed=1, quick=True)
    assert not np.isin(unseen.data.y_train, [7, 8, 9]).any()
    assert np.isin(unseen.data.y_query, [7, 8, 9]).any()
    assert unseen.unseen_classes == (7, 8, 9)
    multi = protocols.make_protocol("mnist5k-multilabel", seed=1, quick=True)
    assert multi.data.multi_label and multi.data.y_query.shape == (60, 10)
    with pytest.raises(ValueError, match="Unknown protocol"):
        protocols.make_protocol("cifar", seed=0)


@pytest.mark.backend_independent
def test_paired_differences_use_seeds_that_ran_both(protocols):
    rows = [
        {"protocol": "p", "bits": 32, "epochs": 15, "seed": s, "mode": m, "map": v}
        for s, m, v in (
            (0, "mlh", 0.90), (0, "center", 0.85), (0, "pairwise", 0.95),
            (1, "mlh", 0.80), (1, "center", 0.70),
            (2, "mlh", 0.91), (2, "center", 0.89), (2, "pairwise", 0.93),
        )
    ]  # fmt: skip
    group = (32, 15, "", None)
    diffs = protocols.paired_differences(rows, "p", group, "mlh", "center")
    assert diffs == pytest.approx({0: 0.05, 1: 0.10, 2: 0.02})
    diffs = protocols.paired_differences(rows, "p", group, "mlh", "pairwise")
    assert diffs == pytest.approx({0: -0.05, 2: -0.02})
    text = protocols.verdict(rows, "p", group)
    assert "vs center +5.67 pts (wins)" in text
    assert "vs pairwise -3.50 pts (loses)" in text
    # A tuning setting of mlh alone is compared with the default baselines.
    tuned = {"setting": "mutual_weight=0.5", "mode": "mlh", "map": 0.99}
    rows += [{**rows[0], **tuned, "seed": s} for s in (0, 2)]
    diffs = protocols.paired_differences(
        rows, "p", (32, 15, "mutual_weight=0.5", None), "mlh", "pairwise"
    )
    assert diffs == pytest.approx({0: 0.04, 2: 0.06})


@pytest.mark.backend_independent
def test_validation_queries_are_held_out_of_the_training_set(protocols):
    split = protocols.make_protocol("mnist5k-unseen", seed=2, quick=True, validation=30)
    data = split.data
    assert len(data.x_query) == 30
    assert not np.isin(data.y_query, [7, 8, 9]).any()  # no test class
    assert not np.isin(data.y_database, [7, 8, 9]).any()
    trained = {image.tobytes() for image in data.x_train}
    assert not any(image.tobytes() in trained for image in data.x_query)
    assert split.config["validation"]["held_out"] == 30
    # Two seen classes play the unseen ones: out of training, in the database.
    assert split.unseen_classes == (5, 6)
    assert not np.isin(data.y_train, [5, 6]).any()
    assert np.isin(data.y_database, [5, 6]).any()
    database = {image.tobytes() for image in data.x_database}
    assert trained <= database
    plain = protocols.make_protocol("mnist5k-full", seed=2, quick=True, validation=30)
    assert plain.unseen_classes == ()
    assert np.array_equal(plain.data.x_database, plain.data.x_train)


@pytest.mark.backend_independent
def test_validation_with_a_held_out_database_trains_on_neither(protocols, tmp_path):
    whole = protocols.make_protocol("mnist5k-full", seed=2, quick=True, validation=30)
    split = protocols.make_protocol(
        "mnist5k-full", seed=2, quick=True, validation="30+40"
    )
    data = split.data
    assert (len(data.x_query), len(data.x_database)) == (30, 40)
    assert len(data.x_train) == len(whole.data.x_train) - 40
    trained = {image.tobytes() for image in data.x_train}
    for held_out in (data.x_query, data.x_database):
        assert not any(image.tobytes() in trained for image in held_out)
    # The same queries as the plain validation split of this seed.
    assert np.array_equal(data.x_query, whole.data.x_query)
    assert protocols.parse_args(["--validation", "30+40"]).validation == "30+40"
    assert protocols.parse_args(["--validation", "500"]).validation == 500
    with pytest.raises(SystemExit):
        protocols.parse_args(["--validation", "30+0"])
    # More held out than --quick trains on: one line, no traceback, no rows.
    argv = ["--quick", "--validation", "1000+2000", "--protocols", "mnist5k-full"]
    with pytest.raises(SystemExit, match="1000\\+2000 holds out 3000 images, but "):
        protocols.main([*argv, "--out", str(tmp_path)])
    assert os.listdir(tmp_path) == []


@pytest.mark.backend_independent
def test_a_json_that_is_not_a_list_of_runs_is_refused(protocols, tmp_path):
    path = tmp_path / "protocols.json"
    path.write_text('{"runs": []}')
    with pytest.raises(ValueError, match="not a list of runs"):
        protocols.load_rows(str(path))


@pytest.mark.backend_independent
def test_the_chart_has_a_panel_per_protocol_of_default_runs_only(protocols):
    def row(protocol, mode, seed, setting=""):
        return {
            "protocol": protocol,
            "mode": mode,
            "bits": 16,
            "epochs": 15,
            "seed": seed,
            "map": 0.5 + 0.1 * seed,
            "setting": setting,
        }

    tuning = [row("mnist5k-unseen", "mlh", 0, setting="center_weight=0.5")]
    failed = {**row("mnist5k-small-train", "mlh", 0), "map": float("nan")}
    assert protocols.plot([*tuning, failed]) is None
    held_out = {**row("mnist5k-full", "mlh", 0), "validation": 500}
    titles = [
        a.get_title()
        for a in protocols.plot(
            [held_out, failed, *tuning, row("mnist5k-full", "mlh", 0)]
        ).axes
    ]
    assert titles == [
        "mnist5k-full (15 epochs)",
        "mnist5k-full (15 epochs, validation 500)",
    ]
    rows = [
        row("mnist5k-full", "mlh", 0),
        row("mnist5k-full", "mlh", 1),
        row("mnist5k-full", "pairwise", 0),
        *tuning,
    ]
    figure = protocols.plot(rows)
    (axes,) = figure.axes
    assert axes.get_title() == "mnist5k-full (15 epochs)"
    heights = sorted(round(bar.get_height(), 4) for bar in axes.patches)
    assert heights == [0.5, 0.55]  # pairwise's one seed, mlh's mean of two


@pytest.mark.backend_independent
def test_fashion_protocols_have_the_fields_shape(protocols, tmp_path):
    from test_fashion_mnist import make_folder

    arrays = make_folder(tmp_path, n_train=400, n_test=100)
    cifar = protocols.make_protocol(
        "fashion-cifar", seed=0, quick=True, fashion_path=tmp_path
    ).data
    # 3 queries and 10 training images per class; the database is the rest.
    assert np.bincount(cifar.y_query).tolist() == [3] * 10
    assert np.bincount(cifar.y_train).tolist() == [10] * 10
    assert len(cifar.x_database) == 300 - 30
    database = {image.tobytes() for image in cifar.x_database}
    assert all(image.tobytes() in database for image in cifar.x_train)
    assert not any(image.tobytes() in database for image in cifar.x_query)
    full = protocols.make_protocol(
        "fashion-full", seed=0, quick=True, fashion_path=tmp_path
    ).data
    # The files' split: queries from the test file, the database is training.
    assert full.x_train is full.x_database and len(full.x_query) == 30
    test_images = {image.tobytes() for image in arrays["t10k"][0]}
    assert all(image[..., 0].tobytes() in test_images for image in full.x_query)


@pytest.mark.backend_independent
def test_seen_unseen_table_columns_follow_its_header(protocols):
    values = {"seen@seen": 0.1, "seen@all": 0.2, "unseen@unseen": 0.3}
    values["unseen@all"] = 0.4
    row = {"protocol": "p", "bits": 32, "epochs": 15, "seed": 0, "mode": "mlh"}
    lines = protocols._seen_unseen_table(
        [{**row, "map": 0.5, "seen_unseen": values}], "p", [(32, 15, "", None)]
    )
    header = [c.strip() for c in lines[3].split("|")]
    cells = [c.strip() for c in lines[-1].split("|")]
    for column, value in values.items():
        assert cells[header.index(column)] == f"{value:.4f}"


def test_set_can_name_keras_layers_such_as_an_augmentation(protocols):
    flip = {"class_name": "RandomFlip", "config": {"mode": "horizontal"}}
    layers = protocols._keras_layers([flip, 3])
    assert type(layers[0]).__name__ == "RandomFlip"
    assert layers[0].mode == "horizontal"
    assert layers[1] == 3
    assert protocols._keras_layers("sample") == "sample"
    assert protocols._keras_layers(["Dense", 0.5]) == ["Dense", 0.5]
    backbone = protocols._keras_layers({"filters": [8, 16]}, "backbone")
    convs = [layer for layer in backbone.layers if "conv" in layer.name]
    assert [conv.filters for conv in convs] == [8, 16]


def test_run_one_builds_the_model_with_the_set_layers(protocols, monkeypatch):
    import keras_mlh

    class Built(Exception):
        pass

    def record(**kwargs):
        raise Built(kwargs)

    monkeypatch.setattr(keras_mlh, "MLH", record)
    flip = {"class_name": "RandomFlip", "config": {"mode": "horizontal"}}
    data = type("Data", (), {"num_classes": 3})()
    protocol = type("Protocol", (), {"data": data})()
    with pytest.raises(Built) as built:
        protocols.run_one(protocol, "mlh", 16, 0, 1, {"augmentation": [flip]})
    kwargs = built.value.args[0]
    assert type(kwargs["augmentation"][0]).__name__ == "RandomFlip"
    assert (kwargs["num_classes"], kwargs["bits"], kwargs["mode"]) == (3, 16, "mlh")


def test_a_backbone_row_records_its_arguments_not_its_layers(protocols):
    import keras_mlh

    backbone = {"filters": [4, 8], "feature_dim": 16}
    overrides = {"backbone": backbone, "center_weight": 2.0}
    model = keras_mlh.MLH(
        num_classes=3,
        bits=16,
        **{k: protocols._keras_layers(v, k) for k, v in overrides.items()},
    )
    config = protocols._model_config(model, overrides)
    assert config["backbone"] == backbone
    assert config["center_weight"] == 2.0 and "name" not in config

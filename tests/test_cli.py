"""End-to-end tests of the `keras-mlh` command line.

One small model is trained once (2,000 real MNIST-5k digits, 2 epochs, 16
bits) and every later step works on its run folder, each command in its own
subprocess as a user would run it: train -> evaluate -> export -> encode ->
index build -> index search. Error paths check the exit code, the one-line
message and that no output file is left behind.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from helpers import error_line, keras_mlh

from keras_mlh import cli
from keras_mlh.cli import io as cli_io
from keras_mlh.cli import parser as cli_parser
from keras_mlh.export import exporter

pytestmark = pytest.mark.end_to_end  # the commands as a user runs them

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def leftovers(folder):
    return [name for name in os.listdir(folder) if name.startswith(".keras-mlh")]


# ------------------------------------------------------- the chained run
@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def run(work):
    result = keras_mlh(
        "train",
        "--limit", 2000,
        "--epochs", 2,
        "--batch-size", 32,
        "--bits", 16,
        "--seed", 0,
        "--out", "run",
        cwd=work,
    )  # fmt: skip
    return work / "run", result


@pytest.fixture(scope="module")
def evaluation(run, work):
    folder, _ = run
    return keras_mlh("evaluate", folder, cwd=work)


@pytest.fixture(scope="module")
def codes(run, work):
    folder, _ = run
    database = keras_mlh(
        "encode", folder / "model.keras", folder / "split.npz", "db.npz",
        "--key", "x_database",
        cwd=work,
    )  # fmt: skip
    queries = keras_mlh(
        "encode", folder / "model.keras", folder / "split.npz", "queries.npy",
        cwd=work,
    )  # fmt: skip
    return work / "db.npz", work / "queries.npy", database, queries


@pytest.fixture(scope="module")
def index_file(codes, work):
    database, _, _, _ = codes
    result = keras_mlh("index", "build", database, "db.index", cwd=work)
    return work / "db.index", result


def test_train_writes_a_run_folder(run):
    folder, result = run
    for name in ("model.keras", "history.json", "split.npz", "run.json"):
        assert (folder / name).is_file(), name
        assert str(folder / name) in result.stdout
    assert "keras-mlh evaluate" in result.stdout
    assert "val_map" in result.stdout  # Keras's progress bar with the metric
    info = json.loads((folder / "run.json").read_text())
    assert info["format"] == "keras-mlh-run"
    assert info["source"] == {"kind": "mnist5k", "limit": 2000}
    assert (info["bits"], info["mode"], info["epochs"]) == (16, "mlh", 2)
    assert (info["num_train"], info["num_queries"]) == (1600, 400)
    assert info["num_classes"] == 10 and info["image_shape"] == [28, 28, 1]
    history = json.loads((folder / "history.json").read_text())
    assert len(history["loss"]) == 2 and len(history["val_map"]) == 2
    with np.load(folder / "split.npz") as split:
        assert split["x_query"].shape == (400, 28, 28, 1)
        assert split["x_database"].shape == (1600, 28, 28, 1)
        assert split["x_database"].dtype == np.uint8
        assert split["y_database"].shape == (1600,)
        assert sorted(np.unique(split["y_query"])) == list(range(10))
    assert not leftovers(folder.parent)


def test_evaluate_writes_metrics_and_plots(run, evaluation):
    folder, _ = run
    out = folder / "eval"
    metrics = json.loads((out / "report.json").read_text())
    # Chance is ~0.1; two epochs on 1,600 digits reach about 0.9.
    assert 0.2 < metrics["map"] <= 1.0
    assert metrics["map_k"] == "all"
    assert f"mAP@all = {metrics['map']:.4f}" in evaluation.stdout
    assert (metrics["num_queries"], metrics["num_database"], metrics["bits"]) == (
        400,
        1600,
        16,
    )
    assert set(metrics["precision_at_k"]) == {"1", "10", "50", "100", "500", "1000"}
    assert all(0 <= v <= 1 for v in metrics["precision_at_k"].values())
    recall = [metrics["recall_at_k"][k] for k in ("1", "10", "100", "1000")]
    assert recall == sorted(recall)
    curve = metrics["pr_curve"]
    assert curve["radius"] == list(range(17))
    assert curve["recall"][-1] == pytest.approx(1.0)
    assert 0 <= metrics["precision_within_radius"]["value"] <= 1
    assert set(metrics["plots"]) == {
        "pr_curve.png",
        "precision_at_k.png",
        "bit_balance.png",
        "history.png",
    }
    for name in metrics["plots"]:
        assert (out / name).read_bytes()[:8] == PNG_MAGIC, name
    assert not leftovers(out)


def test_encode_writes_packed_codes(run, codes):
    folder, _ = run
    database, queries, result, _ = codes
    assert "1600/1600" in result.stdout  # the progress bar
    with np.load(database) as archive, np.load(folder / "split.npz") as split:
        assert archive["codes"].shape == (1600, 2)
        assert archive["codes"].dtype == np.uint8
        np.testing.assert_array_equal(archive["ids"], np.arange(1600))
        assert int(archive["bits"]) == 16
        np.testing.assert_array_equal(archive["labels"], split["y_database"])
        db_codes = archive["codes"]
    query_codes = np.load(queries)
    assert query_codes.shape == (400, 2) and query_codes.dtype == np.uint8
    # Codes differ between images: training did not collapse them.
    assert len(np.unique(db_codes, axis=0)) > 10
    assert not leftovers(database.parent)


def test_export_writes_validated_encoders(run, codes, work):
    folder, _ = run
    result = keras_mlh(
        "export", folder / "model.keras", "encoder",
        "--sample-images", folder / "split.npz",
        cwd=work,
    )  # fmt: skip
    out = work / "encoder"
    assert (out / "model.onnx").is_file()
    assert (out / "saved_model" / "saved_model.pb").is_file()
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["bits"] == 16
    assert sorted(metadata["formats"]) == ["onnx", "saved_model"]
    assert metadata["validation"]["num_images"] == 256  # --max-samples default
    assert "onnx: max |embedding - Keras|" in result.stdout
    # The ONNX encoder gives the codes `encode` wrote.
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(out / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    with np.load(folder / "split.npz") as split:
        images = split["x_database"][:128].astype(np.float32)
    (packed,) = session.run(["packed"], {"images": images})
    with np.load(codes[0]) as archive:
        expected = archive["codes"][:128]
    agree = np.mean(np.unpackbits(packed) == np.unpackbits(expected))
    assert agree >= 0.99


@pytest.mark.parametrize(
    "flags, expected",
    [
        ([], {"formats": ["saved_model", "onnx"], "validate": True}),
        (["--onnx"], {"formats": ["onnx"]}),
        (["--saved-model"], {"formats": ["saved_model"]}),
        (["--onnx", "--saved-model"], {"formats": ["saved_model", "onnx"]}),
        (
            ["--opset", "18", "--atol", "1e-3", "--no-validate", "--overwrite"],
            {"opset": 18, "atol": 1e-3, "validate": False, "overwrite": True},
        ),
    ],
)
def test_export_flags_reach_export_encoder(flags, expected, tmp_path, monkeypatch):
    import functools

    seen = {}

    @functools.wraps(exporter.export_encoder)  # its defaults for the parser
    def fake_export(model, out_dir, **kwargs):
        seen.update(model=model, out_dir=out_dir, **kwargs)
        return {"bits": 16, "validation": None}

    monkeypatch.setattr(exporter, "export_encoder", fake_export)
    model, out = str(tmp_path / "m.keras"), str(tmp_path / "out")
    assert cli.main(["export", model, out, *flags]) == 0
    assert (seen["model"], seen["out_dir"]) == (model, out)
    assert seen["sample_images"] is None and seen["overwrite_flag"] == "--overwrite"
    defaults = {"opset": 17, "atol": 1e-4, "validate": True, "overwrite": False}
    for key, value in {**defaults, **expected}.items():
        assert seen[key] == value, key


def test_export_refuses_a_non_empty_folder(run, work):
    folder, _ = run
    (work / "busy").mkdir()
    (work / "busy" / "keep.txt").write_text("mine")
    result = keras_mlh("export", folder / "model.keras", "busy", cwd=work, expect=1)
    assert result.stderr.count("\n") == 1  # failed before TensorFlow was imported
    assert "--overwrite" in error_line(result)
    assert os.listdir(work / "busy") == ["keep.txt"]


def test_index_build(index_file):
    from keras_mlh_runtime.index import HammingIndex

    path, result = index_file
    assert path.is_file() and not list(path.parent.glob("db.index?*"))  # one file
    assert "1600 16-bit codes" in result.stdout
    index = HammingIndex.load(path)
    assert (len(index), index.bits, index.kind) == (1600, 16, "flat")


def test_index_search_finds_each_database_image_itself(index_file, codes, work):
    path, _ = index_file
    database = codes[0]
    result = keras_mlh(
        "index", "search", path, database, "-k", 5, "--json", "hits.json", cwd=work
    )
    assert result.stdout.startswith("query 0: ")
    hits = json.loads((work / "hits.json").read_text())
    assert (hits["k"], hits["bits"], hits["num_queries"]) == (5, 16, 1600)
    for entry in hits["results"]:
        assert len(entry["ids"]) == 5
        assert all(0 <= i < 1600 for i in entry["ids"])
        assert entry["distances"] == sorted(entry["distances"])
        assert entry["distances"][0] == 0  # the image itself, or a twin code
    # Everything at distance 0 includes the query itself.
    keras_mlh(
        "index", "search", path, database, "--radius", 0, "--json", "same.json",
        cwd=work,
    )  # fmt: skip
    same = json.loads((work / "same.json").read_text())
    for entry in same["results"]:
        assert entry["query_id"] in entry["ids"]
        assert set(entry["distances"]) == {0}


def test_index_search_with_images_matches_codes(run, index_file, codes, work):
    folder, _ = run
    path, _ = index_file
    by_codes = keras_mlh(
        "index", "search", path, codes[1], "-k", 3, "--json", "by_codes.json",
        cwd=work,
    )  # fmt: skip
    by_images = keras_mlh(
        "index", "search", path, folder / "split.npz",
        "--model", folder / "model.keras", "-k", 3, "--json", "by_images.json",
        cwd=work,
    )  # fmt: skip
    a = json.loads((work / "by_codes.json").read_text())["results"]
    b = json.loads((work / "by_images.json").read_text())["results"]
    assert len(a) == len(b) == 400
    assert [e["ids"] for e in a] == [e["ids"] for e in b]
    assert "400/400" in by_images.stdout  # encoding progress

    def printed(result):
        return [line for line in result.stdout.splitlines() if line.startswith("query")]

    assert len(printed(by_codes)) == 10  # --show default
    assert printed(by_codes) == printed(by_images)


# ---------------------------------------------------- a user's own data
def test_training_on_a_folder_of_png_images(tmp_path):
    """A new user's data: 3 classes of 40x30 RGB PNGs, resized to 16x16."""
    from PIL import Image

    rng = np.random.default_rng(0)
    photos = tmp_path / "photos"
    for c, name in enumerate(["red", "green", "blue"]):
        (photos / name).mkdir(parents=True)
        for i in range(12):
            pixels = rng.integers(0, 60, (30, 40, 3)).astype(np.uint8)
            pixels[..., c] += 180
            Image.fromarray(pixels).save(photos / name / f"{i:02d}.png")
    keras_mlh(
        "train", "--folder", photos, "--image-size", 16, "--epochs", 1,
        "--bits", 8, "--batch-size", 8, "--out", "run", "--verbose", 2,
        cwd=tmp_path,
    )  # fmt: skip
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["source"]["kind"] == "folder"
    assert info["class_names"] == ["blue", "green", "red"]
    assert info["image_shape"] == [16, 16, 3]
    assert info["num_train"] + info["num_queries"] == 36
    # Encoding the original 40x30 files resizes them to the model's 16x16.
    keras_mlh(
        "encode", tmp_path / "run" / "model.keras", photos, "codes.npz", cwd=tmp_path
    )
    with np.load(tmp_path / "codes.npz") as archive:
        assert archive["codes"].shape == (36, 1)
        assert list(archive["paths"][:2]) == ["blue/00.png", "blue/01.png"]
    # The index remembers the paths and search reports them.
    keras_mlh("index", "build", "codes.npz", "photos.index", cwd=tmp_path)
    result = keras_mlh(
        "index", "search", "photos.index", "codes.npz", "-k", 2, cwd=tmp_path
    )
    assert result.stdout.startswith("query blue/00.png: ")
    assert ".png (0)" in result.stdout.splitlines()[0]


def test_training_on_an_npz_with_x_y_keys(run, tmp_path):
    with np.load(run[0] / "split.npz") as split:
        images = split["x_database"][:300, :, :, 0]  # (n, 28, 28): 1 channel
        labels = split["y_database"][:300]
    np.savez(tmp_path / "digits.npz", x=images, y=labels)
    keras_mlh(
        "train", "--npz", "digits.npz", "--epochs", 1, "--bits", 8,
        "--val-every", 0, "--num-queries", 50, "--out", "run", "--verbose", 0,
        cwd=tmp_path,
    )  # fmt: skip
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["source"]["kind"] == "npz"
    assert (info["num_train"], info["num_queries"]) == (250, 50)
    assert info["image_shape"] == [28, 28, 1]
    assert "val_map" not in json.loads((tmp_path / "run" / "history.json").read_text())


# --------------------------------------------------------------- errors
SUBCOMMANDS = [
    [],
    ["train"],
    ["evaluate"],
    ["encode"],
    ["index"],
    ["index", "build"],
    ["index", "search"],
    ["export"],
]


@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_help_of_every_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: keras-mlh {' '.join(command)}".rstrip())
    if command and command != ["index"]:
        assert "example" in out


def test_help_is_fast_and_imports_no_tensorflow(tmp_path):
    code = (
        "import sys\n"
        "from keras_mlh.cli import main\n"
        "try:\n"
        "    main(['train', '--help'])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_console_script():
    script = shutil.which("keras-mlh") or os.path.join(
        os.path.dirname(sys.executable), "keras-mlh"
    )
    if not os.path.isfile(script):
        pytest.skip("the keras-mlh console script is not installed")
    result = subprocess.run([script, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("keras-mlh ")


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["index"],
        ["frobnicate"],
        ["train", "--bits", "abc"],
        ["train", "--bits", "12"],
        ["train", "--bits", "80000000"],
        ["train", "--mode", "nope"],
        ["train", "--npz", "a.npz", "--folder", "b"],
        ["train", "--image-size", "12x"],
        ["train", "--num-queries", "1.5"],
        ["evaluate"],
        ["export", "model.keras"],
        ["index", "build", "--kind", "lsh", "c.npz", "i.index"],
    ],
    ids=lambda argv: " ".join(argv) or "nothing",
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    assert "usage: keras-mlh" in capsys.readouterr().err


def test_missing_model_is_one_line_exit_1(tmp_path):
    result = keras_mlh("export", "missing.keras", "out", cwd=tmp_path, expect=1)
    assert result.stderr.count("\n") == 1  # exactly one line
    assert "Model file not found: 'missing.keras'" in error_line(result)
    assert not (tmp_path / "out").exists()


def test_debug_shows_the_traceback(tmp_path):
    for argv in (
        ["--debug", "export", "missing.keras", "out"],
        ["export", "missing.keras", "out", "--debug"],
    ):
        result = keras_mlh(*argv, cwd=tmp_path, expect=1)
        assert "Traceback (most recent call last)" in result.stderr
        assert "Model file not found" in result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "no-run"], "Run folder not found: 'no-run'"),
        (["encode", "missing.keras", "x.npz", "c.npz"], "Model file not found"),
        (["index", "build", "missing.npz", "i.index"], "Codes file not found"),
        (["index", "search", "missing.index", "c.npz"], "Index file not found"),
        (["train", "--npz", "missing.npz"], "Training data not found"),
        (["train", "--folder", "missing"], "Image folder not found"),
        (["encode", "not-a-model.keras", "x.npz", "c.npz"], "is not a Keras model"),
        (["encode", "not-a-model.keras", "x.npz", "c.txt"], "must end in .npy"),
        (["train", "--out", "nothing", "--resume"], "No interrupted run of"),
    ],
)
def test_bad_input_is_one_line_exit_1(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "not-a-model.keras").write_text("not a zip")
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("keras-mlh: error: ")
    assert message in err
    assert sorted(os.listdir(tmp_path)) == ["not-a-model.keras"]


def test_npz_without_the_expected_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", pixels=np.zeros((4, 8, 8)), classes=np.arange(4))
    result = keras_mlh(
        "train", "--npz", "bad.npz", "--out", "run", cwd=tmp_path, expect=1
    )
    line = error_line(result)
    assert "'images' or 'x'" in line and "np.savez(FILE, images=" in line
    assert sorted(os.listdir(tmp_path)) == ["bad.npz"]  # no run folder, no temp


def test_non_mlh_model_export_exits_1(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.save(tmp_path / "plain.keras")
    result = keras_mlh("export", "plain.keras", "out", cwd=tmp_path, expect=1)
    assert "not a keras_mlh.MLH model" in error_line(result)
    assert sorted(os.listdir(tmp_path)) == ["plain.keras"]


def test_wrong_image_shape_leaves_no_output(run, tmp_path):
    folder, _ = run
    np.savez(tmp_path / "rgb.npz", images=np.zeros((5, 32, 32, 3), np.uint8))
    result = keras_mlh(
        "encode", folder / "model.keras", "rgb.npz", "codes.npz",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    line = error_line(result)
    assert "height=32" in line and "expects height=28" in line
    assert sorted(os.listdir(tmp_path)) == ["rgb.npz"]


def test_unwritable_output_fails_before_any_work(run, tmp_path):
    folder, _ = run
    (tmp_path / "file").write_text("")
    # A folder below a file cannot be made, whoever runs the tests.
    result = keras_mlh("train", "--out", "file/run", cwd=tmp_path, expect=1)
    assert "'" + str(tmp_path / "file") + "' is a file" in error_line(result)
    result = keras_mlh(
        "encode", folder / "model.keras", folder / "split.npz", "file/codes.npz",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert "is a file, not a folder" in error_line(result)
    assert sorted(os.listdir(tmp_path)) == ["file"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return  # root writes anywhere
    np.save(tmp_path / "codes.npy", np.zeros((4, 2), np.uint8))
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        for argv in (
            ["index", "build", "codes.npy", "locked/db.index"],
            ["train", "--out", "locked/run"],
        ):
            result = keras_mlh(*argv, cwd=tmp_path, expect=1)
            assert "locked" in error_line(result)
        assert os.listdir(locked) == []
    finally:
        locked.chmod(0o700)


def test_train_refuses_to_replace_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    for extra in ([], ["--overwrite"]):
        assert cli.main(["train", "--out", str(tmp_path / "mine"), *extra]) == 1
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert sorted(os.listdir(tmp_path)) == ["mine"]


def test_tfds_options_reach_from_tfds(tmp_path, monkeypatch, capsys):
    import keras_mlh.datasets

    seen = {}

    def fake_from_tfds(name, **kwargs):
        seen.update(name=name, **kwargs)
        raise ValueError("no network here")

    monkeypatch.setattr(keras_mlh.datasets, "from_tfds", fake_from_tfds)
    argv = ["train", "--tfds", "cifar10", "--limit", "500", "--num-queries", "100"]
    argv += ["--image-size", "24x20", "--out", str(tmp_path / "run")]
    assert cli.main(argv) == 1
    assert "keras-mlh: error: no network here" in capsys.readouterr().err
    assert seen["name"] == "cifar10"
    assert (seen["max_train"], seen["max_queries"]) == (500, 100)
    assert seen["image_size"] == (24, 20)
    assert os.listdir(tmp_path) == []


def test_the_cli_lists_match_the_library():
    from keras_mlh.models.backbones import APPLICATIONS
    from keras_mlh.models.mlh import MODES
    from keras_mlh_runtime.index import KINDS

    commands = cli_parser.build_parser()._subparsers._group_actions[0].choices

    def choices(parser, flag):
        return next(a.choices for a in parser._actions if flag in a.option_strings)

    assert set(choices(commands["train"], "--mode")) == set(MODES)
    assert set(choices(commands["train"], "--backbone")) == {"small", *APPLICATIONS}
    build = commands["index"]._subparsers._group_actions[0].choices["build"]
    assert list(choices(build, "--kind")) == list(KINDS)


def test_export_refuses_to_replace_a_folder_that_is_not_an_export(run, tmp_path):
    folder, _ = run
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    model = str(folder / "model.keras")
    for extra in ([], ["--overwrite"]):
        assert cli.main(["export", model, str(tmp_path / "mine"), *extra]) == 1
    assert os.listdir(tmp_path / "mine") == ["notes.txt"]


# ------------------------------------------------------------- index knobs
@pytest.fixture
def paths_codes(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "codes.npz",
        codes=rng.integers(0, 256, (300, 4), dtype=np.uint8),
        ids=np.arange(300) + 10,
        paths=np.array([f"img/{i}.png" for i in range(300)]),
    )
    return tmp_path


def test_index_knobs_are_options_of_build_and_search(paths_codes, capsys):
    from keras_mlh_runtime.index import HammingIndex

    work = paths_codes
    argv = ["index", "build", str(work / "codes.npz"), str(work / "h.index")]
    knobs = ["--kind", "hnsw", "--ef-search", "120", "--ef-construction", "80"]
    assert cli.main([*argv, *knobs]) == 0
    index = HammingIndex.load(work / "h.index")
    assert (index.ef_search, index.ef_construction) == (120, 80)
    assert index.paths_of([10, 309]) == ["img/0.png", "img/299.png"]
    hits = work / "hits.json"
    query = [str(work / "h.index"), str(work / "codes.npz"), "-k", "3"]
    assert (
        cli.main(["index", "search", *query, "--ef-search", "300", "--json", str(hits)])
        == 0
    )
    entry = json.loads(hits.read_text())["results"][7]
    assert entry["paths"][0] == "img/7.png" and entry["distances"][0] == 0
    ivf = ["--kind", "ivf", "--nlist", "4", "--nprobe", "1"]
    assert cli.main([*argv[:3], str(work / "i.index"), *ivf]) == 0
    query[0] = str(work / "i.index")
    assert cli.main(["index", "search", *query, "--nprobe", "4"]) == 0
    capsys.readouterr()
    # Values the parser accepts but faiss cannot use: one line, exit 1.
    assert cli.main([*argv[:3], str(work / "x.index"), "--hnsw-neighbors", "1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "`hnsw_neighbors` must be an integer" in err
    assert not (work / "x.index").exists()
    for bad in (["--nprobe", "0"], ["--ef-search", "-2"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["index", "search", *query, *bad])
        assert exit_info.value.code == 2


def test_index_defaults_of_the_parser_are_the_library_s():
    import inspect

    from keras_mlh_runtime.index import HammingIndex

    args = cli_parser.build_parser().parse_args(["index", "build", "c.npz", "i"])
    for name, parameter in inspect.signature(HammingIndex).parameters.items():
        if parameter.default is not inspect.Parameter.empty:
            assert getattr(args, name) == parameter.default, name


def test_a_failed_rebuild_keeps_the_previous_index_with_its_paths(paths_codes):
    """The issue's `ulimit -f` case: the build is killed mid-write."""
    import resource

    from keras_mlh_runtime.index import HammingIndex

    work = paths_codes
    keras_mlh("index", "build", "codes.npz", "f.index", cwd=work)
    np.savez(work / "more.npz", codes=np.zeros((5000, 4), np.uint8))

    def tiny_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))

    result = keras_mlh(
        "index", "build", "more.npz", "f.index", "--overwrite", "--kind", "hnsw",
        cwd=work, expect=None, timeout=120, preexec_fn=tiny_files,
    )  # fmt: skip
    assert result.returncode != 0
    index = HammingIndex.load(work / "f.index")
    assert len(index) == 300 and index.paths_of([12]) == ["img/2.png"]


@pytest.mark.parametrize("where", ["last bytes", "flush to disk"])
def test_a_full_disk_at_the_final_write_fails_and_keeps_the_previous_index(
    where, paths_codes, capsys, monkeypatch
):
    """Issue 23: a full disk at the index's final write (where faiss's own
    writer only printed "close error") exits 1 with one line, and the
    previous index still loads; no temporary is left."""
    import errno
    import resource

    from keras_mlh_runtime.index import HammingIndex

    work = paths_codes
    np.savez(work / "more.npz", codes=np.zeros((2000, 4), np.uint8))
    build = ["index", "build", str(work / "more.npz"), str(work / "f.index")]
    assert cli.main(build) == 0
    size = (work / "f.index").stat().st_size
    assert (
        cli.main(
            [
                "index",
                "build",
                str(work / "codes.npz"),
                str(work / "f.index"),
                "--overwrite",
            ]
        )
        == 0
    )
    before = (work / "f.index").read_bytes()
    capsys.readouterr()
    if where == "last bytes":  # the file may grow to all but its last 100 bytes
        soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size - 100, hard))
    else:
        full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        monkeypatch.setattr(os, "fsync", lambda *a: (_ for _ in ()).throw(full))
    try:
        code = cli.main([*build, "--overwrite"])
    finally:
        if where == "last bytes":
            resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1, err
    reason = "File too large" if where == "last bytes" else "No space left"
    assert f"Cannot write {str(work / 'f.index')!r}: {reason}" in err
    monkeypatch.undo()
    assert (work / "f.index").read_bytes() == before
    assert len(HammingIndex.load(work / "f.index")) == 300
    assert sorted(os.listdir(work)) == ["codes.npz", "f.index", "more.npz"]


# ------------------------------------------- outputs never replace inputs
def test_encode_never_writes_over_its_input(run, tmp_path):
    folder, _ = run
    images = np.random.default_rng(0).integers(0, 256, (4, 28, 28, 1), np.uint8)
    np.save(tmp_path / "imgs.npy", images)
    (tmp_path / "alias.npy").symlink_to(tmp_path / "imgs.npy")
    (tmp_path / "old.npy").write_text("earlier codes")
    model = folder / "model.keras"
    result = keras_mlh("encode", model, "imgs.npy", "old.npy", cwd=tmp_path, expect=1)
    assert "exists; pass --overwrite" in error_line(result)
    assert (tmp_path / "old.npy").read_text() == "earlier codes"
    (tmp_path / "model.npz").symlink_to(model)  # the model under a codes name
    for out in ("imgs.npy", "alias.npy", "model.npz"):
        result = keras_mlh(
            "encode", model, "imgs.npy", out, "--overwrite", cwd=tmp_path, expect=1
        )  # fmt: skip
        assert "it is an input of this command" in error_line(result)
    np.testing.assert_array_equal(np.load(tmp_path / "imgs.npy"), images)
    assert sorted(os.listdir(tmp_path)) == [
        "alias.npy", "imgs.npy", "model.npz", "old.npy"
    ]  # fmt: skip
    assert zipfile.is_zipfile(model)


def test_encode_refuses_codes_inside_its_image_folder(tmp_path, capsys):
    # Refused before the model is read: a model archive with a config will do.
    with zipfile.ZipFile(tmp_path / "m.keras", "w") as archive:
        archive.writestr("config.json", "{}")
    (tmp_path / "photos" / "cats").mkdir(parents=True)
    for out in ("photos/codes.npz", "photos/cats/codes.npy"):
        argv = ["encode", str(tmp_path / "m.keras"), str(tmp_path / "photos")]
        assert cli.main([*argv, str(tmp_path / out), "--overwrite"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "an input folder of this command" in err
    assert os.listdir(tmp_path / "photos") == ["cats"]
    assert os.listdir(tmp_path / "photos" / "cats") == []


def test_index_search_json_never_writes_over_the_index(index_file, codes, work):
    path, _ = index_file
    before = {p: p.read_bytes() for p in path.parent.glob("db.index*")}
    for target in ("db.index", codes[1]):
        for extra in ([], ["--overwrite"]):
            result = keras_mlh(
                "index", "search", "db.index", codes[1], "-k", 2,
                "--json", target, *extra, cwd=work, expect=1,
            )  # fmt: skip
            line = error_line(result)
            assert "is an input" in line or "exists; pass --overwrite" in line, line
    assert {p: p.read_bytes() for p in path.parent.glob("db.index*")} == before


def test_index_build_never_writes_over_its_codes(codes, work):
    database = codes[0]
    result = keras_mlh(
        "index", "build", database, database, "--overwrite", cwd=work, expect=1
    )  # fmt: skip
    assert "it is an input" in error_line(result)
    assert np.load(database)["codes"].shape == (1600, 2)


def test_search_json_and_evaluate_need_overwrite_to_replace(
    index_file, codes, run, evaluation, work
):
    folder, _ = run
    args = ("index", "search", "db.index", codes[1], "-k", 1, "--json", "once.json")
    keras_mlh(*args, cwd=work)
    assert "exists; pass --overwrite" in error_line(
        keras_mlh(*args, cwd=work, expect=1)
    )
    keras_mlh(*args, "--overwrite", cwd=work)
    # The default RUN/eval of the `evaluation` fixture exists already.
    result = keras_mlh("evaluate", folder, cwd=work, expect=1)
    assert "report.json' exists; pass --overwrite" in error_line(result)


def test_export_overwrite_never_deletes_the_source_model(run, tmp_path):
    folder, _ = run
    earlier = tmp_path / "encoder"
    earlier.mkdir()
    (earlier / "metadata.json").write_text("{}")  # an earlier export
    shutil.copy(folder / "model.keras", earlier / "model.keras")
    for model in (earlier / "model.keras", earlier / "." / "model.keras"):
        result = keras_mlh(
            "export", model, earlier, "--overwrite", cwd=tmp_path, expect=1
        )  # fmt: skip
        assert "holds" in error_line(result) and "an input" in error_line(result)
    assert sorted(os.listdir(earlier)) == ["metadata.json", "model.keras"]


def test_train_never_replaces_or_pollutes_its_data(tmp_path):
    earlier = tmp_path / "run"
    earlier.mkdir()
    (earlier / "run.json").write_text("{}")  # an earlier run
    np.savez(earlier / "data.npz", images=np.zeros((8, 8, 8)), labels=np.arange(8))
    result = keras_mlh(
        "train", "--npz", earlier / "data.npz", "--out", earlier, "--overwrite",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert "holds" in error_line(result) and "data.npz" in error_line(result)
    (tmp_path / "photos" / "cat").mkdir(parents=True)
    result = keras_mlh(
        "train", "--folder", "photos", "--out", "photos/run", cwd=tmp_path, expect=1
    )  # fmt: skip
    assert "inside" in error_line(result) and "input folder" in error_line(result)
    assert sorted(os.listdir(earlier)) == ["data.npz", "run.json"]
    assert os.listdir(tmp_path / "photos") == ["cat"]


def test_outputs_that_are_not_regular_files_are_refused(run, tmp_path):
    folder, _ = run
    os.mkfifo(tmp_path / "pipe.npz")
    np.save(tmp_path / "imgs.npy", np.zeros((2, 28, 28, 1), np.uint8))
    result = keras_mlh(
        "encode", folder / "model.keras", "imgs.npy", "pipe.npz", "--overwrite",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert "is not a regular file" in error_line(result)
    assert sorted(os.listdir(tmp_path)) == ["imgs.npy", "pipe.npz"]


def test_evaluate_checks_a_damaged_run_before_encoding(
    run, tmp_path, capsys, monkeypatch
):
    folder, _ = run
    damaged = tmp_path / "run"
    shutil.copytree(folder, damaged, ignore=shutil.ignore_patterns("eval"))
    (damaged / "history.json").write_text("{bad")
    assert cli.main(["evaluate", str(damaged)]) == 1
    assert "Cannot read the training history" in capsys.readouterr().err
    split = dict(np.load(damaged / "split.npz"))
    split["y_query"] = split["y_query"][:-3]
    np.savez(tmp_path / "edited.npz", **split)
    # Without a RUN folder the report goes to ./eval (it used to crash).
    monkeypatch.chdir(tmp_path)
    argv = ["evaluate", "--model", str(damaged / "model.keras"), "--data"]
    assert cli.main([*argv, "edited.npz"]) == 1
    err = capsys.readouterr().err
    assert "y_query has 397 labels but x_query 400 images" in err
    assert cli.main([*argv, str(folder / "split.npz"), "-q"]) == 0
    assert (tmp_path / "eval" / "report.json").is_file()
    assert not (damaged / "eval").exists()


def test_a_full_disk_in_faiss_names_the_index_not_a_temporary(tmp_path):
    import resource

    np.save(tmp_path / "codes.npy", np.zeros((2000, 4), np.uint8))

    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (2048, 2048))

    result = keras_mlh(
        "index", "build", "codes.npy", "f.index", "--kind", "hnsw",
        cwd=tmp_path, expect=1, timeout=120, preexec_fn=limit,
    )  # fmt: skip
    line = error_line(result)
    assert f"Cannot write {str(tmp_path / 'f.index')!r}: File too large" in line
    assert sorted(os.listdir(tmp_path)) == ["codes.npy"]


# ------------------------------------------------------------- quiet start
def test_commands_print_no_tensorflow_startup_lines(run, evaluation, codes):
    _, trained = run
    _, _, database, queries = codes
    for result in (trained, evaluation, database, queries):
        for noise in cli_io.STARTUP_NOISE:
            assert noise not in result.stderr, result.stderr


def test_startup_lines_are_dropped_from_stderr_and_nothing_else(capfd):
    # Lines logged from "C++" (file descriptor 2) as TensorFlow does, and by a
    # child process, while a command runs.
    noise = (
        b"WARNING: All log messages before absl::InitializeLog() is called\n"
        b"I0000 port.cc:153] oneDNN custom operations are on.\n"
    )
    with cli_io.startup_lines_hidden():
        os.write(2, noise + b"a real warning\n")
        subprocess.run(
            [sys.executable, "-c", "import sys; sys.stderr.write('child\\n')"]
        )
    assert capfd.readouterr().err == "a real warning\nchild\n"
    os.write(2, noise)  # after the command: passed on again
    assert capfd.readouterr().err == noise.decode()


def test_debug_shows_the_startup_lines(monkeypatch, tmp_path):
    entered = []
    hidden = cli_io.startup_lines_hidden

    def recorded():
        entered.append(True)
        return hidden()

    monkeypatch.setattr(cli_io, "startup_lines_hidden", recorded)
    argv = ["index", "build", str(tmp_path / "x.npz"), "i.index"]
    assert cli.main(argv) == 1 and entered == [True]
    with pytest.raises(ValueError, match="Codes file not found"):
        cli.main(["--debug", *argv])
    assert entered == [True]

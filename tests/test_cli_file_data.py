"""`keras-mlh` on file-backed data: --lists and --folder, streamed from disk.

60 generated 32x32 images, 1 epoch: the run folder records paths and labels,
never pixels, and evaluate / encode / export read the files again.
"""

import json
import os
import re

import numpy as np
import pytest
from helpers import error_line, keras_mlh
from PIL import Image

pytestmark = pytest.mark.end_to_end  # the commands on files, as a user runs them


def make_images(root, count=60, classes=3, size=32):
    """`count` PNGs under root/images/cCLASS/, a colour per class; their lists."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(count):
        label = i % classes
        pixels = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
        pixels[..., label] += 170
        path = root / "images" / f"c{label}" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        hot = " ".join(str(int(j == label)) for j in range(classes))
        rows.append(f"c{label}/{i:03d}.png {hot}")
    lists = root / "lists"
    lists.mkdir()
    (lists / "database.txt").write_text("\n".join(rows[12:]) + "\n")
    (lists / "train.txt").write_text("\n".join(rows[12:42]) + "\n")
    (lists / "test.txt").write_text("\n".join(rows[:12]) + "\n")
    return root / "images", lists


@pytest.fixture(scope="module")
def lists_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("lists")
    images, lists = make_images(work)
    result = keras_mlh(
        "train", "--lists", lists, "--image-root", images, "--image-size", 32,
        "--epochs", 2, "--bits", 8, "--batch-size", 10, "--val-every", 1,
        "--val-split", 6, "--unseen-classes", 2, "--out", "run", "--verbose", 0,
        cwd=work,
    )  # fmt: skip
    return work, images, lists, result


def assert_no_pixel_copies(folder):
    with np.load(folder / "split.npz") as split:
        assert not [k for k in split.files if k.startswith("x_")]
        assert all(split[k].ndim <= 2 for k in split.files), split.files
        return {k: split[k] for k in split.files}


def test_training_from_list_files_records_paths_not_pixels(lists_run):
    work, images, lists, result = lists_run
    assert "streamed from disk" in result.stdout
    info = json.loads((work / "run" / "run.json").read_text())
    assert info["source"]["kind"] == "lists"
    # 30 listed: 10 of the unseen class 2 dropped, 6 held out for validation.
    counts = (info["num_train"], info["num_queries"], info["num_database"])
    assert counts == (14, 12, 48)
    assert info["database_is_training_set"] is False
    assert info["image_shape"] == [32, 32, 3]
    digest = info["source"]["list_files"]["train.txt"]["sha256"]
    import hashlib

    assert digest == hashlib.sha256((lists / "train.txt").read_bytes()).hexdigest()
    split = assert_no_pixel_copies(work / "run")
    assert str(split["image_root"]) == str(images)
    assert list(split["query_paths"][:2]) == ["c0/000.png", "c1/001.png"]
    assert len(split["train_paths"]) == 14 and len(split["database_paths"]) == 48
    history = json.loads((work / "run" / "history.json").read_text())
    assert len(history["val_map"]) == 2
    # The run folder is paths and labels: far below the pixels' size.
    size = sum(
        f.stat().st_size for f in (work / "run").iterdir() if f.name != "model.keras"
    )
    assert size < 60 * 32 * 32 * 3


def test_val_split_holds_images_out_of_training(lists_run):
    work, _, lists, result = lists_run
    info = json.loads((work / "run" / "run.json").read_text())
    validation = info["validation"]
    assert validation["num_val_queries"] == 6
    assert validation["num_val_database"] == 14  # the rest of the training set
    assert validation["best_epoch"] in (1, 2)
    history = json.loads((work / "run" / "history.json").read_text())
    assert validation["best_val_map"] == max(history["val_map"])
    assert f"Kept epoch {validation['best_epoch']}" in result.stdout
    with np.load(work / "run" / "split.npz") as split:
        held, trained = set(split["val_paths"]), set(split["train_paths"])
        queries = set(split["query_paths"])
    listed = {
        line.split()[0] for line in (lists / "train.txt").read_text().splitlines()
    }
    assert len(held) == 6 and held <= listed
    assert held.isdisjoint(trained)  # no leakage into training
    assert held.isdisjoint(queries) and trained.isdisjoint(queries)
    # Stratified over the seen classes 0 and 1: 3 of each.
    assert sorted(p[:2] for p in held) == ["c0"] * 3 + ["c1"] * 3


def test_unseen_classes_are_left_out_of_training_only(lists_run):
    work, _, _, _ = lists_run
    with np.load(work / "run" / "split.npz") as split:
        assert list(split["unseen_classes"]) == [2]
        assert not any(p.startswith("c2/") for p in split["train_paths"])
        assert any(p.startswith("c2/") for p in split["query_paths"])
        assert any(p.startswith("c2/") for p in split["database_paths"])


def test_evaluate_and_encode_read_the_files_again(lists_run, capsys, monkeypatch):
    work, images, _, _ = lists_run
    from keras_mlh import cli
    from keras_mlh.metrics import mean_average_precision

    keras_mlh("evaluate", "run", "--out", "eval", cwd=work)
    report = json.loads((work / "eval" / "report.json").read_text())
    assert (report["num_queries"], report["num_database"]) == (12, 48)
    for key, name in (("x_database", "db.npz"), ("x_query", "q.npz")):
        keras_mlh(
            "encode", work / "run" / "model.keras", work / "run" / "split.npz",
            name, "--key", key,
            cwd=work,
        )  # fmt: skip
    with np.load(work / "db.npz") as db, np.load(work / "q.npz") as q:
        assert db["codes"].shape == (48, 1)
        assert list(db["paths"][:1]) == ["c0/012.png"]
        db_codes, db_labels = db["codes"], db["labels"]
        q_codes, q_labels = q["codes"], q["labels"]
    assert mean_average_precision(
        q_codes, q_labels, db_codes, db_labels
    ) == pytest.approx(report["map"])
    # The seen/unseen report equals mAP computed directly on the sub-splits.
    seen_q, seen_db = q_labels != 2, db_labels != 2
    expected = {
        "seen@seen": (seen_q, seen_db),
        "seen@all": (seen_q, np.ones_like(seen_db)),
        "unseen@unseen": (~seen_q, ~seen_db),
        "unseen@all": (~seen_q, np.ones_like(seen_db)),
    }
    for key, (queries, items) in expected.items():
        direct = mean_average_precision(
            q_codes[queries], q_labels[queries], db_codes[items], db_labels[items]
        )
        assert report["seen_unseen"][key] == pytest.approx(direct), key
    assert report["seen_unseen"]["num_queries"] == {"seen": 8, "unseen": 4}
    # A moved image is named, in one line, before any encoding (in-process:
    # the command's one-line error is `cli.main`'s, the process is tested above).
    monkeypatch.chdir(work)
    capsys.readouterr()
    os.rename(images / "c0" / "000.png", images / "c0" / "moved.png")
    try:
        assert cli.main(["evaluate", "run", "--out", "e2"]) == 1
    finally:
        os.rename(images / "c0" / "moved.png", images / "c0" / "000.png")
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("keras-mlh: error: ")
    assert "000.png" in line and "not found" in line
    assert not (work / "e2").exists()


def test_training_from_a_folder_streams_and_records_paths(tmp_path):
    images, _ = make_images(tmp_path, count=30)
    keras_mlh(
        "train", "--folder", images, "--image-size", 16, "--resize-size", 20,
        "--flip", "--epochs", 1,
        "--bits", 8, "--batch-size", 8, "--num-queries", 6, "--val-every", 0,
        "--out", "run", "--verbose", 0,
        cwd=tmp_path,
    )  # fmt: skip
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["source"]["kind"] == "folder" and info["database_is_training_set"]
    split = assert_no_pixel_copies(tmp_path / "run")
    assert "train_paths" not in split  # the database is the training set
    assert len(split["query_paths"]) == 6 and len(split["database_paths"]) == 24
    assert list(split["resize_to"]) == [20, 20]
    assert info["image_recipe"]["horizontal_flip"] is True
    # The export records the recipe, so the runtime reads files as evaluation;
    # it is validated on the split's own images, read by path.
    keras_mlh(
        "export", "run/model.keras", "encoder", "--onnx",
        "--sample-images", "run/split.npz", "--max-samples", 5,
        cwd=tmp_path,
    )  # fmt: skip
    metadata = json.loads((tmp_path / "encoder" / "metadata.json").read_text())
    assert metadata["resize_to"] == [20, 20]
    assert metadata["validation"]["num_images"] == 5
    # Encoding the folder uses the run's recipe (resize 20, central 16 crop):
    # the same codes as the split's own images.
    run = tmp_path / "run"
    keras_mlh("encode", run / "model.keras", images, "f.npz", cwd=tmp_path)
    keras_mlh(
        "encode", run / "model.keras", run / "split.npz", "s.npz",
        "--key", "x_database",
        cwd=tmp_path,
    )  # fmt: skip
    with np.load(tmp_path / "f.npz") as folder, np.load(tmp_path / "s.npz") as own:
        by_path = dict(zip(folder["paths"], folder["codes"], strict=True))
        for path, code in zip(own["paths"], own["codes"], strict=True):
            np.testing.assert_array_equal(by_path[path], code)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda lists: (lists / "test.txt").write_text(""), "test.txt' is empty"),
        (
            lambda lists: (lists / "train.txt").write_text("c0/999.png 1 0 0\n"),
            "train.txt line 1: image file not found",
        ),
    ],
)
def test_bad_list_files_fail_in_one_line_before_training(tmp_path, edit, message):
    images, lists = make_images(tmp_path, count=45)
    edit(lists)
    result = keras_mlh(
        "train", "--lists", lists, "--image-root", images, "--out", "run",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert message in error_line(result)
    assert "Training MLH" not in result.stdout
    assert not (tmp_path / "run").exists()


def test_a_split_of_100000_file_backed_images_stays_under_20_mb(tmp_path):
    """The paths-and-labels split.npz of an ImageNet-100-sized run."""
    from keras_mlh.datasets import FileHashingData
    from keras_mlh.runs import split_arrays

    rng = np.random.default_rng(0)
    n, classes = 100_000, 100
    root = "/data/imagenet100"
    paths = np.array(
        [f"{root}/train/n{c:08d}/n{c:08d}_{i}.JPEG" for i, c in enumerate(
            rng.integers(0, classes, n)
        )]
    )  # fmt: skip
    multi_hot = (rng.random((n, classes)) < 0.02).astype(np.float32)
    data = FileHashingData(
        train_paths=paths[:10_000], y_train=multi_hot[:10_000],
        query_paths=paths[:5_000], y_query=multi_hot[:5_000],
        database_paths=paths, y_database=multi_hot,
        num_classes=classes, image_root=root,
    )  # fmt: skip
    np.savez_compressed(tmp_path / "split.npz", **split_arrays(data))
    size = (tmp_path / "split.npz").stat().st_size
    assert size < 20 * 2**20, f"{size / 2**20:.1f} MiB"
    with np.load(tmp_path / "split.npz") as split:
        assert split["database_paths"][0].startswith("train/n")
        assert len(split["train_paths"]) == 10_000


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], ((64, 64), None, False)),
        (["--backbone", "resnet50"], ((224, 224), (256, 256), True)),
        (["--backbone", "resnet50", "--image-size", 112], ((112, 112), (128, 128), True)),
        (["--backbone", "resnet50", "--no-flip", "--resize-size", 300], ((224, 224), (300, 300), False)),
        (["--image-size", 32, "--resize-size", 36, "--flip"], ((32, 32), (36, 36), True)),
    ],
)  # fmt: skip
def test_the_standard_image_recipe_and_its_options(
    argv, expected, tmp_path, monkeypatch
):
    import keras_mlh.datasets
    from keras_mlh.cli import parser as cli_parser
    from keras_mlh.cli.train import DATA_OPTIONS
    from keras_mlh.datasets.data_source import training_data

    seen = {}
    monkeypatch.setattr(
        keras_mlh.datasets, "from_directory", lambda folder, **kw: seen.update(kw)
    )
    args = cli_parser.build_parser().parse_args(
        ["train", "--folder", str(tmp_path), *map(str, argv)]
    )
    training_data(**{name: getattr(args, name) for name in DATA_OPTIONS})
    assert (seen["image_size"], seen["resize_to"], seen["horizontal_flip"]) == expected


def test_a_loaders_error_keeps_its_full_message(tmp_path, monkeypatch):
    """The command line shortens it to one line (`cli.errors.one_line`), once."""
    import keras_mlh.datasets
    from keras_mlh.datasets.data_source import training_data

    def refuse(folder, **kwargs):
        raise ValueError("bad folder\n  details for --debug")

    monkeypatch.setattr(keras_mlh.datasets, "from_directory", refuse)
    with pytest.raises(ValueError, match="bad folder\n  details for --debug"):
        training_data(folder=str(tmp_path))


def test_a_resize_smaller_than_the_crop_is_refused(tmp_path):
    images, _ = make_images(tmp_path, count=6)
    result = keras_mlh(
        "train", "--folder", images, "--image-size", 32, "--resize-size", 16,
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    assert "smaller than the crop" in error_line(result)


def test_a_corrupt_image_body_stops_training_in_one_line(tmp_path):
    images, _ = make_images(tmp_path, count=12, size=16)
    victim = images / "c0" / "000.png"
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # the header survives
    result = keras_mlh(
        "train", "--folder", images, "--image-size", 16, "--epochs", 1,
        "--bits", 8, "--num-queries", 3, "--out", "run",
        cwd=tmp_path, expect=1,
    )  # fmt: skip
    # The streamed pipeline names the file (issue 23).
    assert re.search(r"error: Cannot read image '.*c0/000\.png' \(", error_line(result))
    assert not (tmp_path / "run").exists()


def test_tfds_train_with_val_split_and_unseen_classes(tmp_path, capsys):
    """--val-split and --unseen-classes on a (mocked, local) tfds source."""
    import tensorflow_datasets as tfds

    from keras_mlh import cli

    out = tmp_path / "run"
    argv = ["train", "--tfds", "mnist", "--num-queries", "8", "--image-size", "8x8",
            "--val-split", "6", "--unseen-classes", "0", "--epochs", "2",
            "--bits", "16", "--batch-size", "8", "--out", str(out)]  # fmt: skip
    with tfds.testing.mock_data(num_examples=48):
        assert cli.main(argv) == 0, capsys.readouterr().err
    info = json.loads((out / "run.json").read_text())
    assert info["source"]["unseen_classes"] == [0]
    assert info["validation"]["num_val_queries"] == 6
    assert info["validation"]["best_epoch"] in (1, 2)
    split = np.load(out / "split.npz")
    assert len(split["val_indices"]) == 6
    assert len(split["y_database"]) == 48  # the database keeps every class

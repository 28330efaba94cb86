"""`keras_mlh.datasets.fashion_mnist` on tiny idx files the tests write."""

import gzip
import struct

import numpy as np
import pytest

from keras_mlh.datasets import fashion_mnist
from keras_mlh.datasets.fashion_mnist import CLASS_NAMES, read_idx

pytestmark = pytest.mark.backend_independent  # idx files


def write_idx(path, array, compress=False):
    array = np.asarray(array, np.uint8)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    raw = header + array.tobytes()
    with open(path, "wb") as f:
        f.write(gzip.compress(raw) if compress else raw)


def make_folder(folder, n_train=40, n_test=20, compress=False, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        suffix = ".gz" if compress else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", images, compress)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", labels, compress)
        arrays[prefix] = images, labels
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_reads_the_files_split_and_class_names(tmp_path, compress):
    arrays = make_folder(tmp_path, compress=compress)
    data = fashion_mnist(tmp_path)
    np.testing.assert_array_equal(data.x_train[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(data.y_train, arrays["train"][1])
    np.testing.assert_array_equal(data.x_query[..., 0], arrays["t10k"][0])
    np.testing.assert_array_equal(data.y_query, arrays["t10k"][1])
    assert data.x_database is data.x_train
    assert data.num_classes == 10 and data.class_names == list(CLASS_NAMES)
    assert data.y_train.dtype == np.int64 and data.x_train.shape[1:] == (28, 28, 1)


def test_num_queries_is_a_stratified_seeded_sample_of_the_test_images(tmp_path):
    arrays = make_folder(tmp_path)
    data = fashion_mnist(tmp_path, num_queries=10, seed=3)
    assert sorted(data.y_query) == list(range(10))
    assert all(
        any((q[..., 0] == t).all() for t in arrays["t10k"][0]) for q in data.x_query
    )
    again = fashion_mnist(tmp_path, num_queries=10, seed=3)
    np.testing.assert_array_equal(data.x_query, again.x_query)


def test_missing_folder_names_the_package(tmp_path):
    with pytest.raises(ValueError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(tmp_path / "nowhere")


def test_missing_file_names_it(tmp_path):
    make_folder(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(ValueError, match="t10k-labels-idx1-ubyte"):
        fashion_mnist(tmp_path)


def test_truncated_and_foreign_files_are_refused(tmp_path):
    make_folder(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(path)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(ValueError, match="not a uint8 idx file"):
        fashion_mnist(tmp_path)
    path.write_bytes(gzip.compress(b"\0\0\x08\x03")[:-4])
    with pytest.raises(ValueError, match="damaged gzip"):
        read_idx(path)


def test_a_truncated_header_is_refused_by_name(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\0\0\x08\x03" + bytes(5))  # 3 sizes announced, 1.25 given
    with pytest.raises(ValueError, match=r"idx3-ubyte: 9 bytes, shorter than its 16"):
        read_idx(path)


def test_images_and_labels_must_pair_up(tmp_path):
    make_folder(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.zeros(39))
    with pytest.raises(ValueError, match="not one 2-D image per label"):
        fashion_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte", np.full(40, 12))
    with pytest.raises(
        ValueError, match=r"labels up to 12: not one 2-D image per label in 0-9"
    ):
        fashion_mnist(tmp_path)
    make_folder(tmp_path, n_train=0)  # empty files: one line, not a failed fit
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte` is empty"):
        fashion_mnist(tmp_path)


def test_cli_trains_on_it_by_name(tmp_path, monkeypatch, capsys):
    import json

    from keras_mlh import cli

    (tmp_path / "fm").mkdir()
    make_folder(tmp_path / "fm")
    monkeypatch.chdir(tmp_path)
    argv = ["train", "--fashion-mnist", "fm", "--epochs", "1", "--bits", "8"]
    argv += ["--val-every", "0", "--num-queries", "10", "--out", "run", "-q"]
    assert cli.main(argv) == 0
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["source"]["kind"] == "fashion-mnist"
    assert (info["num_train"], info["num_queries"]) == (40, 10)
    capsys.readouterr()
    assert cli.main(["train", "--fashion-mnist", "nowhere", "--out", "r2"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dataset-fashion-mnist" in err
    assert not (tmp_path / "r2").exists()

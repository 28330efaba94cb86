"""`keras-mlh index build` of several codes files (e.g. Beam's shards)."""

import os

import numpy as np
import pytest

from keras_mlh.cli import main
from keras_mlh_runtime.index import HammingIndex

pytestmark = pytest.mark.backend_independent  # codes files and faiss


def _shard(path, codes, **extra):
    np.savez(path, codes=codes, bits=np.int64(codes.shape[1] * 8), **extra)
    return str(path)


@pytest.fixture
def shards(tmp_path):
    rng = np.random.default_rng(0)
    codes = rng.integers(0, 256, (10, 4), dtype=np.uint8)
    paths = np.array([f"img/{i}.png" for i in range(10)])
    files = [
        _shard(tmp_path / "codes-00000-of-00002.npz", codes[:6], paths=paths[:6]),
        _shard(tmp_path / "codes-00001-of-00002.npz", codes[6:], paths=paths[6:]),
    ]
    return files, codes, paths


def test_builds_one_index_of_all_shards_with_their_paths(shards, tmp_path, capsys):
    files, codes, paths = shards
    index_file = tmp_path / "db.index"
    assert main(["index", "build", *files, str(index_file)]) == 0
    assert "Built an index of 10 32-bit codes" in capsys.readouterr().out
    index = HammingIndex.load(str(index_file))
    distances, ids = index.search(codes, k=1)
    np.testing.assert_array_equal(ids[:, 0], np.arange(10))  # numbered in order
    np.testing.assert_array_equal(distances[:, 0], 0)
    assert index.paths_of(range(10)) == [str(p) for p in paths]


def test_ids_of_all_shards_are_kept(tmp_path):
    codes = np.arange(8, dtype=np.uint8).reshape(4, 2)
    files = [
        _shard(tmp_path / "a.npz", codes[:2], ids=np.array([7, 9])),
        _shard(tmp_path / "b.npz", codes[2:], ids=np.array([3, 1])),
    ]
    assert main(["index", "build", *files, str(tmp_path / "db.index")]) == 0
    _, ids = HammingIndex.load(str(tmp_path / "db.index")).search(codes, k=1)
    np.testing.assert_array_equal(ids[:, 0], [7, 9, 3, 1])


def test_shards_of_different_lengths_are_refused(tmp_path, capsys):
    files = [
        _shard(tmp_path / "a.npz", np.zeros((2, 4), np.uint8)),
        _shard(tmp_path / "b.npz", np.zeros((2, 8), np.uint8)),
    ]
    assert main(["index", "build", *files, str(tmp_path / "db.index")]) == 1
    assert "codes of different lengths" in capsys.readouterr().err
    assert not (tmp_path / "db.index").exists()


def test_ids_in_some_shards_only_are_refused(tmp_path, capsys):
    files = [
        _shard(tmp_path / "a.npz", np.zeros((2, 4), np.uint8), ids=np.arange(2)),
        _shard(tmp_path / "b.npz", np.zeros((2, 4), np.uint8)),
    ]
    assert main(["index", "build", *files, str(tmp_path / "db.index")]) == 1
    assert "b.npz' has no `ids` but other codes files do" in capsys.readouterr().err


def test_an_index_onto_one_of_its_shards_is_refused(shards, capsys):
    files, _, _ = shards
    before = open(files[1], "rb").read()
    assert main(["index", "build", *files, files[1], "--overwrite"]) == 1
    assert "it is an input of this command" in capsys.readouterr().err
    assert open(files[1], "rb").read() == before


def test_a_file_given_twice_is_refused(shards, tmp_path, capsys):
    files, _, _ = shards
    again = str(tmp_path / "." / os.path.basename(files[0]))  # same file
    assert main(["index", "build", *files, again, str(tmp_path / "db.index")]) == 1
    assert "is given twice" in capsys.readouterr().err
    assert not (tmp_path / "db.index").exists()


def test_paths_in_some_files_only_are_refused(shards, tmp_path, capsys):
    files, codes, _ = shards
    np.save(tmp_path / "more.npy", codes[:2])  # no paths
    index = str(tmp_path / "db.index")
    assert main(["index", "build", *files, str(tmp_path / "more.npy"), index]) == 1
    assert "more.npy' has no image `paths`" in capsys.readouterr().err
    assert not os.path.exists(index)


def test_an_image_in_two_files_is_refused(shards, tmp_path, capsys):
    files, codes, paths = shards
    other = _shard(tmp_path / "other.npz", codes[:1], paths=paths[3:4])
    assert main(["index", "build", *files, other, str(tmp_path / "db.index")]) == 1
    assert "'img/3.png' is in several codes files" in capsys.readouterr().err

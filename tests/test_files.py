import json
import os

import pytest

from keras_mlh.files import atomic_path, write_json


def test_atomic_path_renames_on_success(tmp_path):
    target = tmp_path / "out.txt"
    with atomic_path(target) as temp:
        assert not target.exists()
        with open(temp, "w") as f:
            f.write("done")
    assert target.read_text() == "done"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_keeps_old_content_and_leaves_no_temp_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temp:
        with open(temp, "w") as f:
            f.write("half")
        raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_path_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        with atomic_path(tmp_path / "nope" / "x.json"):
            pass


def test_write_json_creates_folder(tmp_path):
    path = write_json({"a": [1, 2]}, tmp_path / "sub" / "r.json")
    assert json.loads(open(path).read()) == {"a": [1, 2]}


def test_write_json_failure_leaves_nothing(tmp_path):
    with pytest.raises(TypeError):
        write_json({"a": object()}, tmp_path / "r.json")
    assert os.listdir(tmp_path) == []

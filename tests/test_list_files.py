"""`from_list_files`: the HashNet / DeepHash-pytorch list files, checked early."""

import os

import numpy as np
import pytest
from PIL import Image

from keras_mlh.datasets import FileHashingData, from_list_files

pytestmark = pytest.mark.backend_independent  # list files and images


def write_lists(root, rows_by_file, size=8):
    """Writes the images named in `rows_by_file` and the list files.

    Args:
        root: folder of the images and of the list files.
        rows_by_file: {"train.txt": [(relative path, labels), ...], ...}.
    """
    rng = np.random.default_rng(0)
    for name, rows in rows_by_file.items():
        lines = []
        for path, labels in rows:
            full = root / path
            if not full.exists():
                full.parent.mkdir(parents=True, exist_ok=True)
                pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(full)
            lines.append(f"{path} {' '.join(map(str, labels))}")
        (root / name).write_text("\n".join(lines) + "\n")


def one_hot(i, n=3):
    return [int(j == i) for j in range(n)]


def cifar_like(root, multi=False):
    def label(i):
        if multi:
            return [1, int(i % 2), 0] if i % 3 else [0, 1, 1]
        return one_hot(i % 3)

    database = [(f"img/{i}.png", label(i)) for i in range(12)]
    write_lists(
        root,
        {
            "database.txt": database,
            "train.txt": database[:6],
            "test.txt": [(f"q/{i}.png", label(i)) for i in range(4)],
        },
    )


def test_single_label_lists_become_class_ids(tmp_path):
    cifar_like(tmp_path)
    data = from_list_files(tmp_path, image_size=(8, 8))
    assert isinstance(data, FileHashingData) and not data.multi_label
    assert data.num_classes == 3
    assert (len(data.y_train), len(data.y_query), len(data.y_database)) == (6, 4, 12)
    assert list(data.y_database[:4]) == [0, 1, 2, 0]
    assert data.database_paths[1] == os.path.join(tmp_path, "img", "1.png")
    assert set(data.list_files) == {"train.txt", "test.txt", "database.txt"}
    assert len(data.list_files["train.txt"]["sha256"]) == 64
    images, labels = next(iter(data.query))
    assert images.shape == (4, 8, 8, 3) and list(labels.numpy()) == [0, 1, 2, 0]


def test_multi_hot_lists_and_an_image_root(tmp_path):
    cifar_like(tmp_path / "images", multi=True)
    lists = tmp_path / "lists"
    lists.mkdir()
    for name in ("train.txt", "test.txt", "database.txt"):
        os.replace(tmp_path / "images" / name, lists / name)
    data = from_list_files(lists, image_root=tmp_path / "images", image_size=(8, 8))
    assert data.multi_label and data.y_database.shape == (12, 3)
    assert data.y_database.dtype == np.float32
    with pytest.raises(ValueError, match="img/0.png' *$|image file not found"):
        from_list_files(lists, image_size=(8, 8))  # paths resolve against DIR


def _break(root, name, line, text):
    lines = (root / name).read_text().splitlines()
    if line is None:
        lines.append(text)
    else:
        lines[line - 1] = text
    (root / name).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    "name, line, text, match",
    [
        ("test.txt", 2, "q/missing.png 0 1 0", r"test.txt line 2: image file not found"),
        ("database.txt", 3, "img/2.png 0 1", r"database.txt line 3: 2 labels, expected 3"),
        ("train.txt", 1, "img/0.png 1 0 0 1", r"train.txt line 1: 4 labels, expected 3"),
        ("train.txt", None, "img/1.png 0 1 0", r"train.txt line 7: duplicate path 'img/1.png' \(first on line 2\)"),
        ("train.txt", None, "./img/1.png 0 1 0", r"train.txt line 7: duplicate path './img/1.png' \(first on line 2\)"),
        ("train.txt", 2, "img/1.png 0 2 0", r"train.txt line 2: label '2' is not 0 or 1"),
        ("train.txt", 2, "img/1.png", r"train.txt line 2: expected 'relative/path.jpg"),
        ("test.txt", 1, "notes.txt 1 0 0", r"test.txt line 1: image file .*notes.txt' is not an image Pillow"),
        ("train.txt", 3, "img/2.png 0 0 0", r"train.txt line 3: the image 'img/2.png' has no label \(all zeros\)"),
        # One such query turned a single-label set multi-label silently.
        ("test.txt", 2, "img/1.png 0 0 0", r"test.txt line 2: the image 'img/1.png' has no label \(all zeros\)"),
        ("database.txt", 4, "img/3.png 0 0 0", r"database.txt line 4: the image 'img/3.png' has no label"),
    ],
)  # fmt: skip
def test_each_bad_row_is_named_by_file_and_line(tmp_path, name, line, text, match):
    cifar_like(tmp_path)
    (tmp_path / "notes.txt").write_text("not an image")
    _break(tmp_path, name, line, text)
    with pytest.raises(ValueError, match=match) as error:
        from_list_files(tmp_path, image_size=(8, 8))
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("name", ["train.txt", "test.txt", "database.txt"])
def test_an_empty_or_missing_list_file(tmp_path, name):
    cifar_like(tmp_path)
    (tmp_path / name).write_text("\n")
    with pytest.raises(ValueError, match=f"{name}' is empty"):
        from_list_files(tmp_path)
    (tmp_path / name).unlink()
    with pytest.raises(ValueError, match=f"list file not found: .*{name}"):
        from_list_files(tmp_path)


def test_an_unreadable_image_is_found_before_training(tmp_path):
    cifar_like(tmp_path)
    (tmp_path / "img" / "5.png").write_bytes(b"")
    with pytest.raises(
        ValueError, match=r"train.txt line 6: image file .*5.png' is empty"
    ):
        from_list_files(tmp_path)


def test_an_image_in_two_list_files_is_checked_once(tmp_path, monkeypatch):
    from keras_mlh.datasets import file_data

    cifar_like(tmp_path)  # train.txt: 6 of database.txt's 12; test.txt: 4 more
    checked = []
    monkeypatch.setattr(file_data, "check_image_file", lambda p: checked.append(p))
    from_list_files(tmp_path, image_size=(8, 8))
    assert len(checked) == len(set(checked)) == 16

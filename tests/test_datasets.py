import numpy as np
import pytest

from keras_mlh.datasets import (
    check_labels,
    from_arrays,
    from_directory,
    from_tfds,
    validate_images,
)
from keras_mlh.datasets.tfds_data import network_error as tfds_network_error

pytestmark = pytest.mark.backend_independent  # numpy and tf.data input pipelines


# ---------------------------------------------------------------- validation
def test_validate_images_accepts_3d_as_grayscale():
    assert validate_images(np.zeros((2, 5, 5), "uint8")).shape == (2, 5, 5, 1)


@pytest.mark.parametrize(
    "images, kwargs, match",
    [
        (np.zeros((2, 784)), {}, "height, width, channels"),  # wrong rank
        (np.zeros((2, 28, 28, 3)), {"image_shape": (28, 28, 1)}, "channels=3"),
        (np.zeros((2, 32, 28, 1)), {"image_shape": (28, 28, 1)}, "height=32"),
        (np.array([[["a"]]]), {}, "numeric"),
        (np.full((1, 2, 2, 1), np.nan), {}, "NaN or infinite"),
        (np.full((1, 2, 2, 1), np.inf), {}, "NaN or infinite"),
        (np.zeros((0, 4, 4, 1)), {}, "empty"),
    ],
)
def test_validate_images_errors(images, kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate_images(images, **kwargs)


def test_check_labels_ids_and_multi_hot():
    np.testing.assert_array_equal(check_labels([2, 0], 3), [2, 0])
    np.testing.assert_array_equal(check_labels([[1], [0]], 3), [1, 0])
    hot = np.array([[1, 0, 1], [0, 0, 0]])
    np.testing.assert_array_equal(check_labels(hot, 3), hot)


@pytest.mark.parametrize(
    "labels, kwargs, match",
    [
        ([0, 3], {}, r"\[0, 3\)"),  # out of range
        ([-1, 0], {}, r"\[0, 3\)"),
        (np.zeros((2, 4)), {}, "3 columns"),  # wrong multi-hot width
        (np.array([[0, 2, 1]]), {}, "only 0 and 1"),
        (np.zeros((2, 2, 2)), {}, "class ids"),  # wrong rank
        ([1.0, 0.5], {}, r"whole numbers .*, e\.g\. not 0\.5"),
        ([1.0, np.inf], {}, "e.g. not inf"),
        (np.array([1, 2**63], np.uint64), {}, "e.g. not 9223372036854775808"),
        (np.array(["a", "b"]), {}, "integer class ids"),
        ([0, 1, 2], {"num_images": 2}, "2 images but 3"),
    ],
)
def test_check_labels_errors(labels, kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_labels(labels, 3, **kwargs)


# -------------------------------------------------------------------- arrays
def _digits(n_per_class=20, classes=5, size=6):
    labels = np.repeat(np.arange(classes), n_per_class)  # class-sorted source
    images = np.random.default_rng(0).integers(0, 256, (len(labels), size, size, 1))
    return images.astype("uint8"), labels


def test_from_arrays_is_stratified_seeded_and_disjoint():
    images, labels = _digits()
    data = from_arrays(images, labels, num_queries=25, seed=3)
    assert len(data.x_query) == 25 and len(data.x_train) == 75
    assert np.array_equal(np.bincount(data.y_query), [5] * 5)
    again = from_arrays(images, labels, num_queries=25, seed=3)
    np.testing.assert_array_equal(data.x_query, again.x_query)
    other = from_arrays(images, labels, num_queries=25, seed=4)
    assert not np.array_equal(data.x_query, other.x_query)
    flat = {img.tobytes() for img in images}
    assert len(flat) == len(images)
    assert not {i.tobytes() for i in data.x_query} & {i.tobytes() for i in data.x_train}
    # Class-sorted input must not come out class-sorted (tie-breaking bias).
    assert not np.all(np.diff(data.y_database) >= 0)
    assert data.x_database is data.x_train


def test_from_arrays_fraction_multilabel_and_tf_data():
    images, _ = _digits()
    multi_hot = (np.random.default_rng(1).random((len(images), 4)) < 0.3).astype("int")
    data = from_arrays(images, multi_hot, num_queries=0.2, batch_size=16)
    assert data.multi_label and data.num_classes == 4
    assert len(data.x_query) == 20 and data.y_train.shape == (80, 4)
    batch_images, batch_labels = next(iter(data.train))
    assert batch_images.shape == (16, 6, 6, 1) and batch_labels.shape == (16, 4)
    assert sum(int(b[0].shape[0]) for b in data.query) == 20


@pytest.mark.parametrize("num_queries", [0, 100, 1.5, "10", True])
def test_from_arrays_bad_query_count(num_queries):
    images, labels = _digits()
    with pytest.raises(ValueError, match="num_queries"):
        from_arrays(images, labels, num_queries=num_queries)


def test_from_arrays_rejects_label_count_mismatch():
    images, labels = _digits()
    with pytest.raises(ValueError, match="images but"):
        from_arrays(images, labels[:-1])


@pytest.mark.parametrize("limit", [30, 100, 500])
def test_from_arrays_limit_is_a_seeded_sample_in_order(limit):
    images, labels = _digits()
    data = from_arrays(images, labels, num_queries=0.2, seed=7, limit=limit)
    count = min(limit, len(images))
    assert len(data.x_train) + len(data.x_query) == count
    keep = np.sort(np.random.default_rng(7).choice(100, count, replace=False))
    kept = {img.tobytes() for img in images[keep]}
    assert {img.tobytes() for img in [*data.x_train, *data.x_query]} == kept
    again = from_arrays(images, labels, num_queries=0.2, seed=7, limit=limit)
    np.testing.assert_array_equal(data.x_query, again.x_query)


def test_from_arrays_bad_limit():
    images, labels = _digits()
    for limit in (0, -5, 2.5, "10", True):
        with pytest.raises(ValueError, match="`limit` must be a positive integer"):
            from_arrays(images, labels, limit=limit)
    # Sampling must not hide labels that do not match the images.
    with pytest.raises(ValueError, match="images but"):
        from_arrays(images, labels[:-1], limit=10)


def test_mnist5k_limit():
    import keras_mlh

    data = keras_mlh.datasets.mnist5k(num_queries=0.2, limit=2000)
    assert (len(data.x_train), len(data.x_query)) == (1600, 400)
    assert data.num_classes == 10 and data.class_names[9] == "9"
    assert sorted(np.unique(data.y_query)) == list(range(10))


def test_mnist5k_split(mnist5k):
    assert mnist5k.x_query.shape == (1000, 28, 28, 1)
    assert mnist5k.x_train.shape == (4000, 28, 28, 1)
    assert mnist5k.x_train.dtype == np.uint8 and mnist5k.x_train.max() > 200
    assert np.array_equal(np.bincount(mnist5k.y_query), [100] * 10)
    assert np.array_equal(np.bincount(mnist5k.y_train), [400] * 10)
    assert mnist5k.num_classes == 10 and mnist5k.class_names[3] == "3"


# -------------------------------------------------------------------- folder
def _write_folder(root, sizes, mode="RGB"):
    from PIL import Image

    rng = np.random.default_rng(0)
    for name, size in sizes.items():
        (root / name).mkdir(parents=True)
        for i, (w, h) in enumerate(size):
            channels = 3 if mode == "RGB" else 1
            pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
            Image.fromarray(pixels.squeeze(), mode=mode).save(root / name / f"{i}.png")
    (root / "cats" / "notes.txt").write_text("not an image")


def test_from_directory_resizes_mixed_sizes(tmp_path):
    _write_folder(
        tmp_path,
        {
            "cats": [(40, 30), (20, 20), (64, 48)],
            "dogs": [(30, 40), (10, 12), (50, 50)],
        },
    )
    data = from_directory(tmp_path, image_size=(16, 16), num_queries=2)
    assert data.class_names == ["cats", "dogs"]
    assert data.x_train.shape == (4, 16, 16, 3) and data.x_train.dtype == np.uint8
    assert sorted(np.bincount(data.y_query)) == [1, 1]
    gray = from_directory(
        tmp_path, image_size=(8, 8), color_mode="grayscale", num_queries=2
    )
    assert gray.image_shape == (8, 8, 1)


def test_from_directory_errors(tmp_path):
    match = "Image folder not found, or no class subfolders with images"
    with pytest.raises(ValueError, match=match):
        from_directory(tmp_path / "missing")
    with pytest.raises(ValueError, match=match):
        from_directory(tmp_path)
    (tmp_path / "empty_class").mkdir()
    (tmp_path / "empty_class" / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match=match):
        from_directory(tmp_path)


def test_from_directory_skips_hidden_files_and_folders(tmp_path):
    _write_folder(tmp_path, {"cats": [(20, 20), (20, 20)], "dogs": [(20, 20)] * 2})
    # What notebooks and macOS leave behind: not classes, not images.
    _write_folder(tmp_path / ".ipynb_checkpoints", {"cats": [(20, 20)]})
    (tmp_path / "dogs" / "._0.png").write_bytes(b"AppleDouble metadata")
    _write_folder(tmp_path / "dogs" / "nested", {"cats": [(20, 20)]})
    data = from_directory(tmp_path, image_size=(8, 8), num_queries=1)
    assert data.class_names == ["cats", "dogs"]
    assert len(data.x_train) + len(data.x_query) == 5  # nested dog image counts


def test_from_directory_names_an_unreadable_image(tmp_path):
    _write_folder(tmp_path, {"cats": [(20, 20)], "dogs": [(20, 20)]})
    (tmp_path / "dogs" / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ValueError, match="broken.jpg' is not an image Pillow can read"):
        from_directory(tmp_path, image_size=(8, 8), num_queries=1)


# ---------------------------------------------------------------------- tfds
REAL_NETWORK_ERROR = tfds_network_error  # the conftest fixture stubs it out


def test_from_tfds_offline_fails_fast_and_leaves_nothing(tmp_path, monkeypatch):
    """Offline, `--tfds NAME` retried for 213 s with 40 warnings and left
    temporary download folders behind."""
    import socket

    import tensorflow_datasets as tfds

    def unreachable(*args, **kwargs):
        raise OSError("Network is unreachable")

    def no_download(*args, **kwargs):
        raise AssertionError("tfds tried to download")

    from keras_mlh.datasets import tfds_data

    monkeypatch.setattr(socket, "create_connection", unreachable)
    monkeypatch.setattr(tfds_data, "network_error", REAL_NETWORK_ERROR)
    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    # No download is tried (so no retries), and no folder is made.
    with pytest.raises(ValueError, match=r"'mnist' is not in .*no network.*tfds build"):
        from_tfds("mnist", data_dir=str(tmp_path / "tfds"))
    assert list(tmp_path.iterdir()) == []


def test_from_tfds_single_label_mock_streams():
    import tensorflow as tf
    import tensorflow_datasets as tfds

    from keras_mlh.datasets import TfdsHashingData

    # The views read tfds when used: inside the mock.
    with tfds.testing.mock_data(num_examples=12):
        data = from_tfds("mnist", image_size=(16, 16), max_queries=5, batch_size=4)
        assert isinstance(data, TfdsHashingData)
        assert not any(  # labels only: no pixel array is held
            isinstance(v, np.ndarray) and v.ndim == 4 for v in vars(data).values()
        )
        assert isinstance(data.train, tf.data.Dataset)
        assert [len(y) for _, y in data.train.as_numpy_iterator()] == [4, 4, 4]
        assert data.x_train.shape == (12, 16, 16, 1)
        assert data.x_query.shape == (5, 16, 16, 1)
    assert data.y_train.shape == (12,) and data.y_query.shape == (5,)
    assert data.num_classes == 10 and not data.multi_label
    assert data.class_names is not None and len(data.class_names) == 10


def test_from_tfds_multi_label_variable_size_mock():
    import tensorflow_datasets as tfds

    # The coco mock gives random image sizes: the loader must resize them all.
    with tfds.testing.mock_data(num_examples=8):
        data = from_tfds("coco/2017", query_split="validation", image_size=(24, 24))
        assert data.x_train.shape == (8, 24, 24, 3)
    assert data.multi_label and data.num_classes == 80
    assert data.y_train.shape == (8, 80)
    assert set(np.unique(data.y_train)) <= {0.0, 1.0}


def test_from_tfds_unknown_label_key_mock():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=4):
        with pytest.raises(ValueError, match="label_key"):
            from_tfds("mnist", label_key="nope")


# ------------------------------------------------------ label-check memory
def test_a_large_class_id_costs_no_num_classes_squared_memory():
    """One id of 60000 among 200 images once asked np.eye for 13.4 GiB."""
    import tracemalloc

    from keras_mlh.datasets import check_labels

    labels = np.arange(200) % 4
    labels[7] = 60000
    tracemalloc.start()
    try:
        # Inferred, such a count is refused (see the stray-id test); given, it
        # must still cost memory in the labels only.
        data = from_arrays(
            np.zeros((200, 4, 4, 1), "uint8"), labels, 60001, num_queries=20
        )
        check_labels(np.array([10**9, 0]), num_classes=10**9 + 1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert data.num_classes == 60001
    assert peak < 20 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    np.testing.assert_array_equal(check_labels([2, 0], 3), [2, 0])
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        check_labels([0, 3], 3)


# ------------------------------------------------------- streamed folders
def test_from_directory_streams_paths_not_pixels(tmp_path):
    from keras_mlh.datasets import FileHashingData

    _write_folder(tmp_path, {"cats": [(20, 20)] * 5, "dogs": [(30, 10)] * 5})
    data = from_directory(tmp_path, image_size=(8, 8), num_queries=2, batch_size=4)
    assert isinstance(data, FileHashingData)
    assert data.train_paths.dtype.kind == "U"  # paths, no pixel array anywhere
    assert not any(
        isinstance(v, np.ndarray) and v.ndim == 4 for v in vars(data).values()
    )
    assert sorted(np.bincount(data.y_query)) == [1, 1]
    assert set(data.query_paths).isdisjoint(data.train_paths)
    seen = [labels.numpy() for _, labels in data.train]
    assert [len(b) for b in seen] == [4, 4]
    assert sorted(np.concatenate(seen)) == sorted(data.y_train)


def test_file_data_train_view_is_shuffled_and_the_others_keep_their_order(tmp_path):
    _write_folder(tmp_path, {"cats": [(8, 8)] * 20, "dogs": [(8, 8)] * 20})
    data = from_directory(tmp_path, image_size=(8, 8), num_queries=4, batch_size=64)
    (train, _), (query, y_query), (database, _) = (
        next(iter(view)) for view in (data.train, data.query, data.database)
    )
    np.testing.assert_array_equal(y_query, data.y_query)
    np.testing.assert_array_equal(query, data.x_query)
    np.testing.assert_array_equal(database, data.x_database)
    assert len(train) == len(data.x_train) == 36
    assert not np.array_equal(train, data.x_train)  # shuffled


def test_infer_num_classes_from_ids_or_multi_hot_rows():
    from keras_mlh.labels import infer_num_classes

    assert infer_num_classes(np.array([0, 3, 1])) == 4
    assert infer_num_classes(np.array([[2], [0]])) == 3  # an id column
    assert infer_num_classes(np.zeros((2, 5))) == 5  # multi-hot rows
    assert infer_num_classes(np.array([], dtype=np.int64)) == 1


def test_a_stray_class_id_is_refused_before_any_work(tmp_path):
    """One id of 4999 among ten classes made `train` build 5,000 classes
    (60000: a 26.8 GiB MemoryError): the inferred count is refused."""
    from keras_mlh.datasets import from_arrays, from_files
    from keras_mlh.labels import infer_num_classes

    labels = np.array([*range(10)] * 3 + [4999])
    x = np.zeros((len(labels), 4, 4, 1), np.uint8)
    match = r"^Label 4999 \(label #30\) implies 5000 classes, but only 11 .*Renumber"
    with pytest.raises(ValueError, match=match):
        from_arrays(x, labels, num_queries=2)
    with pytest.raises(ValueError, match=match):  # before any file is read
        from_files([tmp_path / f"{i}.png" for i in range(len(labels))], labels)
    # Given explicitly, the count is the caller's; a few unused ids are fine.
    assert from_arrays(x, labels, num_classes=5000, num_queries=2).num_classes == 5000
    assert infer_num_classes(np.array([0, 1, 5, 12])) == 13
    assert infer_num_classes(np.array([*range(50), 99])) == 100

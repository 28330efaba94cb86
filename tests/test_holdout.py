"""Validation hold-out and seen/unseen splits of a training set."""

import numpy as np
import pytest
from PIL import Image

from keras_mlh.datasets import from_arrays, from_files
from keras_mlh.datasets.hashing_data import (
    class_ids_of,
    drop_classes,
    hold_out_validation,
)

pytestmark = pytest.mark.backend_independent  # label splits


def _unique_images(n):
    # Each image's first pixel is its index: an image is found by its value.
    images = np.zeros((n, 4, 4, 1), np.float32)
    images[:, 0, 0, 0] = np.arange(n)
    return images


def test_hold_out_validation_arrays_no_leakage_stratified_seeded():
    images, labels = _unique_images(100), np.arange(100) % 4
    data = from_arrays(images, labels, num_queries=20, seed=0)
    split = hold_out_validation(data, 0.25)
    held = set(split.queries[0][:, 0, 0, 0])
    trained = set(split.data.x_train[:, 0, 0, 0])
    assert len(held) == 20 and len(trained) == 60
    assert held.isdisjoint(trained)  # a held-out image is never trained on
    assert held | trained == set(data.x_train[:, 0, 0, 0])
    assert set(split.database[0][:, 0, 0, 0]) == trained  # the rest of training
    assert sorted(np.bincount(split.queries[1])) == [5, 5, 5, 5]
    # The test queries and the database are untouched.
    np.testing.assert_array_equal(split.data.x_query, data.x_query)
    np.testing.assert_array_equal(split.data.x_database, data.x_database)
    again = hold_out_validation(data, 0.25)
    np.testing.assert_array_equal(again.indices, split.indices)
    other = hold_out_validation(data, 0.25, seed=1)
    assert not np.array_equal(other.indices, split.indices)
    with pytest.raises(ValueError, match="val_split"):
        hold_out_validation(data, 80)


def test_hold_out_validation_files(tmp_path):
    paths = []
    for i in range(12):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(paths[-1])
    data = from_files(paths, np.arange(12) % 2, num_queries=2, image_size=(4, 4))
    split = hold_out_validation(data, 4)
    assert set(split.paths).isdisjoint(split.data.train_paths)
    assert len(split.data.train_paths) == 6
    images, labels = split.queries
    decoded = np.concatenate([batch[0] for batch in images.as_numpy_iterator()])
    assert len(decoded) == 4 and sorted(np.bincount(labels)) == [2, 2]


def test_drop_classes_keeps_queries_and_database():
    data = from_arrays(_unique_images(60), np.arange(60) % 3, num_queries=12)
    seen = drop_classes(data, [2])
    assert 2 not in seen.y_train and len(seen.y_train) == 32
    np.testing.assert_array_equal(seen.y_query, data.y_query)
    np.testing.assert_array_equal(seen.y_database, data.y_database)
    multi_hot = np.eye(3)[np.arange(8) % 3]
    multi_hot[:, 0] = 1  # every image is of class 0, some of class 1 too
    multi = from_arrays(_unique_images(8), multi_hot, num_queries=2)
    assert not drop_classes(multi, [1]).y_train[:, 1].any()  # any unseen label
    with pytest.raises(ValueError, match="No training image"):
        drop_classes(from_arrays(_unique_images(6), [0] * 6, num_queries=2), [0])


def test_an_image_with_one_of_several_unseen_labels_leaves_training():
    multi_hot = np.zeros((12, 4))
    multi_hot[:, 0] = 1  # every image is of class 0 ...
    multi_hot[[0, 4, 8], 1] = 1  # ... some of one unseen class too,
    multi_hot[[1, 5], 2] = 1  # or of the other,
    multi_hot[[2, 6], 3] = 1  # or of a seen class.
    data = from_arrays(_unique_images(12), multi_hot, num_queries=2, seed=0)
    seen = drop_classes(data, [1, 2])
    assert not seen.y_train[:, [1, 2]].any()
    kept = data.y_train[~data.y_train[:, [1, 2]].any(axis=1)]
    np.testing.assert_array_equal(seen.y_train, kept)
    assert 0 < len(seen.y_train) < len(data.y_train)


def test_class_ids_of_names_and_ids():
    assert class_ids_of(["7", "cat", " 2"], 10, [f"n{i}" for i in range(9)] + ["cat"]) == [
        2, 7, 9,
    ]  # fmt: skip
    for bad, match in ((["10"], "out of range"), (["dog"], "Unknown class")):
        with pytest.raises(ValueError, match=match):
            class_ids_of(bad, 10)
    with pytest.raises(ValueError, match="Every class"):
        class_ids_of(["0", "1"], 2)


def test_tfds_val_split_and_unseen_classes_stream_without_leakage():
    """A tfds mock: held-out examples never reach training, views agree."""
    import tensorflow_datasets as tfds

    from keras_mlh.datasets import from_tfds
    from keras_mlh.datasets.hashing_data import drop_classes, hold_out_validation

    def rows(dataset):  # (image bytes, label) of every example
        return [
            (image.tobytes(), int(label))
            for images, labels in dataset.as_numpy_iterator()
            for image, label in zip(images, labels, strict=True)
        ]

    with tfds.testing.mock_data(num_examples=40):
        data = from_tfds("mnist", image_size=(8, 8), batch_size=4, max_queries=4)
        every = rows(data.database)
        assert [label for _, label in every] == list(data.y_train)
        unseen = int(data.y_train[0])
        seen = drop_classes(data, [unseen])
        trained = rows(seen.train)
        assert trained and all(label != unseen for _, label in trained)
        assert sorted(trained) == sorted(r for r in every if r[1] != unseen)
        np.testing.assert_array_equal(seen.y_database, data.y_train)  # kept

        split = hold_out_validation(seen, 0.25, seed=0)
        held, rest = rows(split.queries[0]), rows(split.data.train)
        assert len(held) == len(split.queries[1]) == round(0.25 * len(trained))
        assert [label for _, label in held] == list(split.queries[1])
        assert [label for _, label in rows(split.database[0])] == list(
            split.database[1]
        )
        assert sorted(held + rest) == sorted(trained)  # a partition, no leak
        assert not {image for image, _ in held} & {image for image, _ in rest}
        assert len(split.data.train) == -(-len(rest) // 4)  # steps per epoch
        assert len(split.data.y_train) == len(rest)
        np.testing.assert_array_equal(split.data.y_database, data.y_train)
        again = hold_out_validation(seen, 0.25, seed=0)  # seeded
        np.testing.assert_array_equal(again.indices, split.indices)

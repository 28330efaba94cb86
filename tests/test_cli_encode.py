"""The read/encode loop of `keras-mlh encode` (`keras_mlh.encoding.encode_images`):
one `predict` over batches read ahead gives `MLH.encode`'s codes, in order."""

import numpy as np
import pytest
from PIL import Image

from keras_mlh import encoding


@pytest.fixture(scope="module")
def model():
    """An untrained 16-bit MLH: its random codes differ from image to image."""
    import keras

    import keras_mlh

    keras.utils.set_random_seed(0)
    model = keras_mlh.MLH(num_classes=10, bits=16)
    model.build((None, 28, 28, 1))
    return model


@pytest.fixture(scope="module")
def digits():
    """Smooth to noisy images, every other one inverted: an untrained model
    gives most noise images one code (on JAX all nine), these several."""
    rng = np.random.default_rng(0)
    images = []
    for i in range(9):
        size = 2 ** (i % 5)  # blocks of size x size pixels
        blocks = rng.integers(0, 256, (28 // size + 1,) * 2)
        image = np.kron(blocks, np.ones((size, size)))[:28, :28]
        images.append(255 - image if i % 2 else image)
    return np.array(images, np.uint8)[..., None]


@pytest.mark.parametrize("count", [1, 7, 9])
def test_array_input_matches_one_encode_call(model, digits, count, tmp_path):
    np.save(tmp_path / "x.npy", digits[:count])
    images = encoding.open_images(str(tmp_path / "x.npy"), (28, 28, 1))
    codes = encoding.encode_images(model, images, batch_size=3, verbose=0)
    expected = model.encode(digits[:count])
    assert codes.dtype == np.int8 and codes.shape == (count, 16)
    np.testing.assert_array_equal(codes, expected)
    assert count == 1 or len(np.unique(expected, axis=0)) > 1  # order matters


def test_folder_input_keeps_paths_and_order(model, digits, tmp_path):
    folder = tmp_path / "photos"
    (folder / "b").mkdir(parents=True)
    names = [f"{'ab'[i % 2]}/{i}.png" for i in range(7)]
    for name, image in zip(names, digits, strict=False):
        (folder / name).parent.mkdir(exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / name)
    images = encoding.open_images(str(folder), (28, 28, 1))
    codes = encoding.encode_images(model, images, batch_size=3, verbose=0)
    order = np.argsort(names)  # the folder is read in sorted order
    np.testing.assert_array_equal(images.paths, np.array(names)[order])
    np.testing.assert_array_equal(codes, model.encode(digits[:7][order]))


def test_progress_bar_counts_images(model, digits, tmp_path, capsys):
    np.save(tmp_path / "x.npy", digits[:7])
    images = encoding.open_images(str(tmp_path / "x.npy"), (28, 28, 1))
    encoding.encode_images(model, images, batch_size=3, verbose=1)
    out = capsys.readouterr().out
    assert "Encoding 7 images" in out and "7/7" in out

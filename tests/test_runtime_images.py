"""`keras_mlh_runtime.images`: Pillow decoding that matches `keras-mlh encode`."""

import sys

import numpy as np
import pytest
from PIL import Image

from keras_mlh.datasets.sources import load_image
from keras_mlh_runtime.images import color_mode, decode_image, read_image

KERAS_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


@pytest.fixture
def files(tmp_path):
    """PNG and JPEG files of several modes and sizes."""
    rng = np.random.default_rng(0)
    made = {
        "gray.png": Image.fromarray(rng.integers(0, 256, (28, 28), np.uint8)),
        "rgb.png": Image.fromarray(rng.integers(0, 256, (28, 28, 3), np.uint8)),
        "big.png": Image.fromarray(rng.integers(0, 256, (45, 37), np.uint8)),
        "rgba.png": Image.fromarray(rng.integers(0, 256, (20, 30, 4), np.uint8)),
        "photo.jpg": Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)),
    }
    for name, image in made.items():
        image.save(tmp_path / name)
    return {name: tmp_path / name for name in made}


@pytest.mark.parametrize("shape", [(28, 28, 1), (28, 28, 3), (16, 24, 4)])
def test_matches_keras_load_img_on_8_bit_files(files, shape):
    import keras

    for path in files.values():
        image = keras.utils.load_img(
            path, color_mode=KERAS_MODES[shape[2]], target_size=shape[:2]
        )
        expected = keras.utils.img_to_array(image, dtype="uint8")
        got = read_image(path, shape)
        assert got.dtype == np.uint8 and got.shape == shape
        np.testing.assert_array_equal(got, expected, err_msg=path.name)


def test_decode_bytes(files):
    data = files["gray.png"].read_bytes()
    np.testing.assert_array_equal(
        decode_image(data, (28, 28, 1)), read_image(files["gray.png"], (28, 28, 1))
    )


def test_not_an_image(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"Cannot read image .*bad.png.*remove or"):
        read_image(bad, (28, 28, 1))
    with pytest.raises(ValueError, match=r"\(not an image format Pillow can read\)"):
        read_image(bad, (28, 28, 1))  # not "<_io.BytesIO object at 0x...>"
    with pytest.raises(ValueError, match="Cannot read image .*check the path"):
        read_image(tmp_path / "missing.png", (28, 28, 1))


def test_channels_without_a_mode():
    assert color_mode((8, 8, 3)) == "RGB"
    with pytest.raises(ValueError, match="2-channel images; image files can only"):
        color_mode((8, 8, 2))


def test_without_pillow_the_import_error_says_what_to_install(files, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # import fails
    with pytest.raises(
        ImportError, match=r"needs Pillow: pip install \"keras-mlh-runtime\[images\]\""
    ):
        read_image(files["gray.png"], (28, 28, 1))


@pytest.mark.parametrize("channels", [1, 3])
def test_16_bit_grayscale_is_rescaled_as_the_training_pipeline_does(tmp_path, channels):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    low = rng.integers(0, 256, (28, 28), dtype=np.uint16)  # below 8-bit precision
    path = tmp_path / "deep.png"
    deep = pixels.astype(np.uint16) * 256 + low
    Image.fromarray(deep).save(path)
    assert Image.open(path).mode == "I;16"
    got = read_image(path, (28, 28, channels))
    expected = np.round(deep / 257.0).astype(np.uint8)
    np.testing.assert_array_equal(got, np.repeat(expected[..., None], channels, -1))
    # The same pixels for training and `keras-mlh encode` (their reader).
    mode = KERAS_MODES[channels]
    np.testing.assert_array_equal(load_image(str(path), (28, 28), mode), got)

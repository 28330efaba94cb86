"""`keras_mlh_runtime.images`: Pillow decoding that matches `keras-mlh encode`."""

import sys

import numpy as np
import pytest
from PIL import Image

from keras_mlh_runtime.images import color_mode, read_image

pytestmark = pytest.mark.backend_independent  # serving: onnxruntime on image files

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
def test_matches_keras_load_img_on_8_bit_files_of_the_models_size(files, shape):
    import keras

    for path in files.values():
        if Image.open(path).size != (shape[1], shape[0]):
            continue  # resized: see the next tests (load_img samples nearest)
        image = keras.utils.load_img(path, color_mode=KERAS_MODES[shape[2]])
        expected = keras.utils.img_to_array(image, dtype="uint8")
        got = read_image(path, shape)
        assert got.dtype == np.uint8 and got.shape == shape
        np.testing.assert_array_equal(got, expected, err_msg=path.name)


@pytest.fixture(scope="module")
def sized_files(tmp_path_factory):
    """Smooth noisy RGB and grayscale PNGs and JPEGs of sizes no model takes."""
    folder = tmp_path_factory.mktemp("sized")
    rng = np.random.default_rng(1)
    paths = []
    for height, width in ((37, 53), (300, 200), (20, 24)):
        y, x = np.mgrid[0:height, 0:width] / max(height, width)
        waves = np.stack([np.sin(7 * x + 3 * y), np.cos(5 * y), np.sin(9 * x * y)], -1)
        noisy = 127.5 + 90 * waves + rng.normal(0, 25, (height, width, 3))
        rgb = np.clip(noisy, 0, 255).astype(np.uint8)
        for mode, pixels in (("RGB", rgb), ("L", rgb[..., 1])):
            for suffix in ("png", "jpg"):
                path = folder / f"{mode}_{height}x{width}.{suffix}"
                Image.fromarray(pixels, mode).save(path)
                paths.append(path)
    return paths


def pipeline_pixels(paths, shape, resize_to=None):
    """The evaluation pipeline's pixels of `paths` (one batch, in order)."""
    from keras_mlh.datasets.image_pipeline import image_dataset

    dataset = image_dataset(
        paths,
        image_size=shape[:2],
        channels=shape[2],
        batch_size=len(paths),
        resize_to=resize_to,
    )
    return next(iter(dataset)).numpy()


@pytest.mark.parametrize("shape", [(32, 32, 3), (28, 28, 1), (64, 48, 4)])
def test_resizing_matches_the_training_pipeline(sized_files, shape):
    """Pillow's float BILINEAR against tf.image.resize(antialias=True)."""
    pipeline = pipeline_pixels(sized_files, shape)
    for path, expected in zip(sized_files, pipeline, strict=True):
        got = read_image(path, shape).astype(int)
        difference = np.abs(got - expected)
        # One level where a value falls on .5 and float round-off decides;
        # uint8 resizing (rounded twice) differs on ~10% of the pixels.
        assert difference.max() <= 1, path.name
        assert (difference == 0).mean() >= 0.98, path.name


@pytest.mark.parametrize(
    "shape, resize_to",
    [((32, 32, 3), (36, 36)), ((28, 28, 1), (37, 53)), ((16, 20, 4), (23, 20))],
)
def test_resize_then_center_crop_matches_the_evaluation_pipeline(
    sized_files, shape, resize_to
):
    """The recipe of named backbones (256 -> central 224) at evaluation."""
    pipeline = pipeline_pixels(sized_files, shape, resize_to)
    for path, expected in zip(sized_files, pipeline, strict=True):
        got = read_image(path, shape, resize_to=resize_to).astype(int)
        difference = np.abs(got - expected)
        assert difference.max() <= 1, path.name
        # Enlarging puts more values on .5 than shrinking does.
        assert (difference == 0).mean() >= 0.97, path.name


@pytest.mark.parametrize("shape", [(37, 53, 3), (37, 53, 1), (300, 200, 4)])
def test_jpegs_of_the_models_size_match_the_training_pipeline(sized_files, shape):
    """Both decode JPEGs with the accurate integer DCT (TF's default is fast)."""
    paths = [
        path
        for path in sized_files
        if path.suffix == ".jpg" and Image.open(path).size == (shape[1], shape[0])
    ]
    assert len(paths) == 2  # RGB and grayscale
    for path, expected in zip(paths, pipeline_pixels(paths, shape), strict=True):
        np.testing.assert_array_equal(read_image(path, shape), expected, path.name)


def test_codes_of_resized_files_match_keras_mlh_encode(
    mnist_export, mnist_mlh, mnist5k, tmp_path
):
    """`HashEncoder.encode_files` and `keras-mlh encode`'s reader, same bits."""
    from keras_mlh.encoding import encode_images, file_images
    from keras_mlh_runtime import HashEncoder

    paths = []
    for i, digit in enumerate(mnist5k.x_query[:40, ..., 0]):
        size = ((53, 37), (200, 300))[i % 2]  # Pillow's (width, height)
        image = Image.fromarray(digit).resize(size, Image.Resampling.BICUBIC)
        if i % 4 >= 2:
            image = image.convert("RGB")
        paths.append(tmp_path / f"{i:02d}.{'png' if i % 3 else 'jpg'}")
        image.save(paths[-1])
    runtime = HashEncoder.load(mnist_export[0]).encode_files(paths, output="codes")
    keras_codes = encode_images(
        mnist_mlh, file_images(paths, (28, 28, 1)), batch_size=16, verbose=0
    )
    assert runtime.shape == keras_codes.shape == (40, 32)
    assert (runtime == keras_codes).mean() >= 0.995


def test_decode_bytes(files):
    data = files["gray.png"].read_bytes()
    np.testing.assert_array_equal(
        read_image("gray.png", (28, 28, 1), data=data),
        read_image(files["gray.png"], (28, 28, 1)),
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
    from keras_mlh.datasets.image_pipeline import image_dataset, iterate_batches

    dataset = image_dataset([path], image_size=(28, 28), channels=channels)
    np.testing.assert_array_equal(next(iterate_batches(dataset))[0], got)


def _mode_image(mode):
    """A small image of Pillow `mode` with varied values (and a transparent
    palette colour for `P+transparency`)."""
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (13, 11, 4), np.uint8)
    rgba[..., 3] = np.where(rng.random((13, 11)) < 0.3, 0, rgba[..., 3])
    image = Image.fromarray(rgba, "RGBA")
    if mode == "P+transparency":
        image = image.convert("RGB").quantize(16)
        image.info["transparency"] = 0
        return image
    if mode in ("I;16", "I"):
        deep = rng.integers(0, 65536, (13, 11)).astype(np.uint16)
        return (
            Image.fromarray(deep).convert(mode)
            if mode == "I"
            else Image.fromarray(deep)
        )
    if mode == "F":
        return Image.fromarray(rng.random((13, 11)).astype(np.float32))
    if mode == "P":
        return image.convert("RGB").quantize(16)
    if mode == "PA":
        return image.convert("PA")
    return image.convert(mode)


IMAGE_MODES = ("1", "L", "LA", "P", "P+transparency", "PA", "RGB", "RGBA",
               "CMYK", "YCbCr", "LAB", "HSV", "I;16", "I", "F")  # fmt: skip
IMAGE_FORMATS = ("PNG", "GIF", "JPEG", "TIFF", "WEBP", "BMP")


def _saved(mode, fmt):
    """The bytes of `_mode_image(mode)` saved as `fmt`, or None if Pillow
    cannot save that mode in that format."""
    import io

    buffer = io.BytesIO()
    image = _mode_image(mode)
    try:
        image.save(buffer, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return buffer.getvalue()


MODE_FILES = [
    (mode, fmt) for mode in IMAGE_MODES for fmt in IMAGE_FORMATS if _saved(mode, fmt)
]


@pytest.fixture(scope="module")
def mode_files(tmp_path_factory):
    """Every (mode, format) Pillow saves, as a file, with the pipeline's
    pixels of it at each channel count, at its size and resized."""
    from keras_mlh.datasets.image_pipeline import image_dataset, iterate_batches

    folder = tmp_path_factory.mktemp("modes")
    paths = {}
    for mode, fmt in MODE_FILES:
        paths[mode, fmt] = folder / f"{mode.replace(';', '_')}.{fmt.lower()}"
        paths[mode, fmt].write_bytes(_saved(mode, fmt))
    pipeline = {}
    for shape in SHAPES:
        for key, path in paths.items():
            dataset = image_dataset([path], image_size=shape[:2], channels=shape[2])
            try:
                (pipeline[key, shape],) = iterate_batches(dataset)
            except ValueError as error:
                pipeline[key, shape] = error
    return paths, pipeline


SHAPES = [(13, 11, 1), (13, 11, 3), (13, 11, 4), (7, 9, 3)]


@pytest.mark.parametrize(
    "mode, fmt", MODE_FILES, ids=[f"{m}-{f}" for m, f in MODE_FILES]
)
def test_training_and_serving_read_every_mode_alike(mode_files, mode, fmt):
    """One decoding rule: the training pipeline's pixels are the runtime's,
    or both refuse the file with the same message."""
    paths, pipeline = mode_files
    for shape in SHAPES:
        expected = pipeline[(mode, fmt), shape]
        if isinstance(expected, ValueError):
            with pytest.raises(ValueError) as refused:
                read_image(paths[mode, fmt], shape)
            assert str(refused.value) == str(expected)
            assert mode in ("F", "LAB", "HSV"), str(expected)
            continue
        got = read_image(paths[mode, fmt], shape)
        np.testing.assert_array_equal(got, expected[0], err_msg=f"{shape}")

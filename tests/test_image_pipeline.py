"""The streaming pipeline: decoding (8 and 16 bits), resizing, crops, flips."""

import numpy as np
import pytest
from PIL import Image

from keras_mlh.datasets import check_image_file, image_dataset
from keras_mlh.datasets.image_pipeline import iterate_batches

pytestmark = pytest.mark.backend_independent  # tf.data input pipeline


def _batches(dataset):
    return list(iterate_batches(dataset))


def test_8_bit_files_decode_exactly(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    for suffix in ("png", "bmp"):
        Image.fromarray(pixels).save(tmp_path / f"a.{suffix}")
        (images,) = _batches(
            image_dataset([tmp_path / f"a.{suffix}"], image_size=(12, 10))
        )
        np.testing.assert_array_equal(images[0], pixels)


def test_16_bit_png_is_rescaled_not_saturated(tmp_path):
    """A 16-bit grayscale PNG (PIL mode I;16) used to become all-255 images."""
    ramp = (np.arange(16 * 16).reshape(16, 16) * 256).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode == "I;16"
    for channels in (1, 3):
        (images,) = _batches(
            image_dataset(
                [tmp_path / "deep.png"], image_size=(16, 16), channels=channels
            )
        )
        expected = np.round(ramp / 257.0)
        np.testing.assert_allclose(images[0, :, :, 0], expected, atol=1)
        assert images.min() == 0 and 250 <= images.max() <= 255
    # The folder loader of `keras-mlh encode` decodes the same way.
    dataset = image_dataset([tmp_path / "deep.png"], image_size=(16, 16), channels=1)
    again = next(iterate_batches(dataset))[0]
    np.testing.assert_allclose(again[..., 0], np.round(ramp / 257.0), atol=1)


def test_grayscale_from_formats_without_a_gray_decoder(tmp_path):
    pixels = np.full((8, 8, 3), 90, np.uint8)
    for suffix in ("bmp", "gif", "jpg"):
        Image.fromarray(pixels).save(tmp_path / f"a.{suffix}")
        (images,) = _batches(
            image_dataset([tmp_path / f"a.{suffix}"], image_size=(8, 8), channels=1)
        )
        assert images.shape == (1, 8, 8, 1)
        np.testing.assert_allclose(images, 90, atol=3)


def test_training_view_shuffles_crops_and_flips_seeded(tmp_path):
    left = np.zeros((20, 20, 3), np.uint8)
    left[:, :10] = 255  # bright left half: a flip moves it right
    Image.fromarray(left).save(tmp_path / "l.png")
    paths, labels = [tmp_path / "l.png"] * 16, np.arange(16)

    def epoch(seed):
        ds = image_dataset(
            paths, labels, image_size=(16, 16), resize_to=(20, 20), batch_size=16,
            training=True, horizontal_flip=True, seed=seed,
        )  # fmt: skip
        return _batches(ds)[0]

    images, order = epoch(0)
    assert images.shape == (16, 16, 16, 3)
    assert sorted(order) == list(range(16)) and list(order) != list(range(16))
    flipped = images[:, :, -1, 0].mean(axis=1) > 128  # bright right edge
    assert 0 < flipped.sum() < 16
    again, again_order = epoch(0)
    np.testing.assert_array_equal(again_order, order)
    np.testing.assert_array_equal(again, images)
    # Evaluation: file order, central crop, never flipped.
    (evaluation, eval_order) = _batches(
        image_dataset(paths, labels, image_size=(16, 16), resize_to=(20, 20))
    )[0]
    assert list(eval_order) == list(range(16))
    np.testing.assert_array_equal(evaluation[0], left[2:18, 2:18])


def test_resize_to_smaller_than_the_crop_is_refused():
    with pytest.raises(ValueError, match="smaller than the crop"):
        image_dataset(["a.png"], image_size=(32, 32), resize_to=(16, 16))


def test_a_truncated_body_names_the_file(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.jpg")
    data = (tmp_path / "a.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert check_image_file(tmp_path / "cut.jpg") == "jpeg"  # the header is fine
    paths = [tmp_path / "a.jpg", tmp_path / "cut.jpg"]
    with pytest.raises(ValueError, match=r"^Cannot read image '.*cut\.jpg' \(") as info:
        _batches(image_dataset(paths, image_size=(8, 8)))
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)
    # A header cut short is refused before the pipeline, by name.
    (tmp_path / "head.jpg").write_bytes(data[:200])
    with pytest.raises(ValueError, match=r"head\.jpg.*truncated or corrupt"):
        check_image_file(tmp_path / "head.jpg")


@pytest.mark.parametrize(
    "content, match",
    [
        (None, "not found"),
        (b"", "is empty"),
        (b"II*\x00" + bytes(40), "not an image Pillow can read"),
        (b"just text", "not an image Pillow can read"),
        (b"\x89PNG\r\n\x1a\n" + bytes(4), "not an image Pillow can read"),
    ],
)
def test_check_image_file_refuses(content, match, tmp_path):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        check_image_file(path)


def test_a_path_under_a_file_is_not_found(tmp_path):
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"image file not found: '.*a\.png/b\.png'"):
        check_image_file(tmp_path / "a.png" / "b.png")
    (tmp_path / "folder.png").mkdir()  # not "check its permissions"
    with pytest.raises(ValueError, match=r"folder\.png' \(missing, or a folder\)"):
        check_image_file(tmp_path / "folder.png")


def test_check_image_file_takes_what_pillow_reads_but_float(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.uint16)).save(tmp_path / "deep.png")
    assert check_image_file(tmp_path / "deep.png") == "png"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.tif")
    assert check_image_file(tmp_path / "a.tif") == "tiff"
    Image.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ValueError, match=r"float\.tif.*float pixels"):
        check_image_file(tmp_path / "float.tif")
    header = bytearray((tmp_path / "deep.png").read_bytes())
    header[24] = 32  # no such PNG depth
    (tmp_path / "bad.png").write_bytes(bytes(header))
    with pytest.raises(ValueError, match="bad.png' is not an image Pillow can read"):
        check_image_file(tmp_path / "bad.png")


def test_decompression_bombs_are_refused_by_training_as_by_serving(
    tmp_path, monkeypatch
):
    """One pixel limit, Pillow's `MAX_IMAGE_PIXELS`, for training and serving
    (a 20000x20000 PNG of 48 KB took training to 8.5 GB)."""
    from PIL import Image as PILImage

    from keras_mlh_runtime.images import read_image

    monkeypatch.setattr(PILImage, "MAX_IMAGE_PIXELS", 1000)
    for side in (40, 80):  # over the limit; over twice the limit
        path = tmp_path / f"bomb{side}.png"
        Image.fromarray(np.zeros((side, side), np.uint8)).save(path)
        with pytest.raises(ValueError, match=f"bomb{side}.png"):
            check_image_file(path)
        with pytest.raises(ValueError, match=rf"^Cannot read image .*bomb{side}\.png"):
            _batches(image_dataset([path], image_size=(8, 8)))
        with pytest.raises(ValueError, match=rf"^Cannot read image .*bomb{side}\.png"):
            read_image(path, (8, 8, 1))

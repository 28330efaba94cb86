"""Image files as an encoder's input pixels, with Pillow: the one decoding
rule (`decode_planes`) of training, `HashEncoder` and Beam. Resizing is
TensorFlow's antialiased bilinear (Pillow's BILINEAR on float32 planes),
rounded once at the end (uint8 resizing would round twice).
"""

import io
import os

import numpy as np

from keras_mlh_runtime.errors import first_line

COLOR_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")  # grayscale PNG, TIFF
# ITU-R 601-2 luma (Pillow's "L" weights), applied in float32 before resizing.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def color_mode(image_shape):
    """The Pillow mode (`"L"`, `"RGB"` or `"RGBA"`) of `image_shape`'s channels.

    Example:
    >>> color_mode((28, 28, 1))
    'L'
    """
    channels = int(image_shape[-1])
    if channels not in COLOR_MODES:
        raise ValueError(
            f"The encoder takes {channels}-channel images; image files can only be "
            "read as 1 (grayscale), 3 (RGB) or 4 (RGBA) channels. Pass arrays "
            "to HashEncoder.encode instead."
        )
    return COLOR_MODES[channels]


def read_image(path, image_shape, resize_to=None, data=None):
    """One image file as uint8 pixels, decoded by `decode_planes`.

    Args:
        path: the image file.
        image_shape: the encoder's `(height, width, channels)`.
        resize_to: `None` resizes to the input size; `(height, width)` to
            that, then crops the centre (`metadata.json`'s `resize_to`).
        data: the file's bytes, if already read (`path` then names it).

    Returns:
        uint8 array of shape `image_shape`.

    Example:
    >>> from PIL import Image
    >>> Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    >>> read_image("digit.png", (28, 28, 1)).dtype
    dtype('uint8')
    """
    path = os.fspath(path)
    color_mode(image_shape)  # checked before any reading
    if data is None:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as error:
            raise ValueError(
                f"Cannot read image {path!r} ({error.strerror or error}); check "
                "the path."
            ) from None
    height, width = int(image_shape[0]), int(image_shape[1])
    planes = decode_planes(data, image_shape[-1], resize_to or (height, width), path)
    # The pipeline's central crop (corner `(size - crop) // 2`) of float pixels.
    top = (planes.shape[0] - height) // 2
    left = (planes.shape[1] - width) // 2
    crop = planes[top : top + height, left : left + width]
    return np.clip(np.round(crop), 0, 255).astype(np.uint8)


def decode_planes(data, channels, size=None, name="image"):
    """One encoded image as float32 pixels: Pillow's conversion of its mode,
    except that 16-bit grayscale is divided by 257 and grayscale is the luma
    of RGB; float images and decompression bombs are refused (`check_opened`).

    Args:
        data: the file's bytes.
        channels: 1, 3 or 4.
        size: `(height, width)` to resize to, or `None` for the file's size.
        name: the file, for messages.

    Returns:
        float32 array `(height, width, channels)`, for the caller to round.

    Example:
    >>> from PIL import Image
    >>> Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    >>> with open("digit.png", "rb") as file:
    ...     decode_planes(file.read(), 3, (14, 14)).shape
    (14, 14, 3)
    """
    Image = _pillow()
    try:
        with Image.open(io.BytesIO(data)) as image:
            check_opened(image, name)
            height, width = size or (image.height, image.width)
            return _planes(image, COLOR_MODES[int(channels)], (int(width), int(height)))
    except Exception as error:  # Pillow raises OSError subclasses and others
        if str(error).startswith(f"Cannot read image {name!r}"):
            raise  # check_opened's
        reason = (
            "not an image format Pillow can read"  # its message names a buffer
            if isinstance(error, Image.UnidentifiedImageError)
            else f"{type(error).__name__}: {first_line(error)}"
        )
        raise ValueError(
            f"Cannot read image {name!r} ({reason}); remove or replace the file."
        ) from None


def check_opened(image, name="image"):
    """Refuses an opened `PIL.Image.Image` of float pixels or of more than
    `PIL.Image.MAX_IMAGE_PIXELS`, before it is decoded; `name` is the file.

    Example:
    >>> from PIL import Image
    >>> check_opened(Image.new("F", (4, 4)), "depth.tif")
    Traceback (most recent call last):
    ValueError: Cannot read image 'depth.tif': it holds float pixels (Pillow mode F), whose range is unknown; convert it to an 8- or 16-bit image.
    """
    limit = _pillow().MAX_IMAGE_PIXELS
    if limit and image.width * image.height > limit:
        raise ValueError(
            f"Cannot read image {name!r}: {image.width}x{image.height} pixels, "
            f"more than the {limit:,} pixels Pillow allows (a decompression bomb "
            "or a huge scan); shrink the image, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if it is trusted."
        )
    if image.mode == "F":
        raise ValueError(
            f"Cannot read image {name!r}: it holds float pixels (Pillow mode "
            "F), whose range is unknown; convert it to an 8- or 16-bit image."
        )


def _pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError(
            'Reading image files needs Pillow: pip install "keras-mlh-runtime[images]"'
            " (or pip install pillow)."
        ) from None
    return Image


def _planes(image, mode, size):
    """`image` in `mode` as float planes resized to `size` (width, height)."""
    Image = _pillow()
    if image.mode in SIXTEEN_BIT_MODES:
        planes = np.asarray(image).astype(np.float32) / np.float32(257.0)
        planes = np.repeat(planes[..., None], len(mode), axis=-1)
        if mode == "RGBA":
            planes[..., 3] = 255
    elif mode == "L" and image.mode != "L":
        planes = np.asarray(image.convert("RGB"), dtype=np.float32) @ LUMA_WEIGHTS
    else:
        converted = image if image.mode == mode else image.convert(mode)
        planes = np.asarray(converted, dtype=np.float32)
    planes = planes.reshape(planes.shape[0], planes.shape[1], -1)
    if image.size == size:
        return planes
    planes = [
        Image.fromarray(np.ascontiguousarray(p), "F")
        for p in np.moveaxis(planes, -1, 0)
    ]
    return np.stack([np.asarray(p.resize(size, Image.BILINEAR)) for p in planes], -1)

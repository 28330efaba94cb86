"""Image files as the exported encoder's input pixels, with Pillow only.

The one image reader of training and serving (no TensorFlow): the training
pipeline (`keras_mlh.datasets.image_pipeline`) decodes with `decode_planes`,
and so do `HashEncoder.encode_files` and the Beam pipeline
(`keras_mlh_runtime.beam_encode`), so a file gives both the same pixels
whatever its format and mode. A file is converted to the model's colour mode
by Pillow (16-bit grayscale rescaled by 1/257, grayscale as the float luma
of RGB, JPEGs with the accurate integer DCT, Pillow's rules for palettes,
transparency and 1-bit images) and resized with TensorFlow's antialiased
bilinear kernel (Pillow's BILINEAR on float32 planes: the same triangle
kernel, widened by the scale factor when shrinking, with the same half-pixel
centres), rounded once at the end (uint8 resizing would round twice).
"""

import io
import os

import numpy as np

from keras_mlh_runtime.errors import first_line

# Channels of the model's input -> Pillow mode, and back.
COLOR_MODES = {1: "L", 3: "RGB", 4: "RGBA"}
COLOR_CHANNELS = {mode: channels for channels, mode in COLOR_MODES.items()}
# Pillow's modes of 16-bit grayscale files (PNG, TIFF).
SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
# ITU-R 601-2 luma, Pillow's "L" weights, as the training pipeline applies
# them (in float32, before resizing).
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)


def color_mode(image_shape):
    """The Pillow mode that gives `image_shape`'s channel count.

    Args:
        image_shape: the encoder's `(height, width, channels)`.

    Returns:
        `"L"`, `"RGB"` or `"RGBA"`.

    Raises:
        ValueError: for another channel count.

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


def decode_image(data, image_shape, name="image", resize_to=None):
    """One encoded image (PNG, JPEG, ... bytes) as uint8 pixels.

    Args:
        data: the file's bytes.
        image_shape: the encoder's `(height, width, channels)`.
        name: the file, for messages.
        resize_to: `None` resizes straight to the input size; `(height,
            width)` resizes to it, then takes the central crop of the input
            size (an encoder trained with a resize-then-crop recipe: its
            `metadata.json` `resize_to`).

    Returns:
        uint8 array of shape `image_shape`.

    Raises:
        ValueError: when the bytes are not an image Pillow can read, or one
            `decode_planes` refuses.

    Example:
    >>> from PIL import Image
    >>> Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    >>> with open("digit.png", "rb") as file:
    ...     decode_image(file.read(), (28, 28, 1)).shape
    (28, 28, 1)
    """
    height, width = int(image_shape[0]), int(image_shape[1])
    mode = color_mode(image_shape)  # checked before any decoding
    planes = decode_planes(
        data, COLOR_CHANNELS[mode], resize_to or (height, width), name
    )
    # The evaluation half of the resize-then-crop recipe: the central crop of
    # the float pixels, its corner the pipeline's (`(size - crop) // 2`).
    top = (planes.shape[0] - height) // 2
    left = (planes.shape[1] - width) // 2
    return _rounded(planes[top : top + height, left : left + width])


def decode_planes(data, channels, size=None, name="image"):
    """One encoded image as float32 pixels: the one decoding rule of training
    (`keras_mlh.datasets.image_pipeline`) and serving.

    Whatever the file's mode, Pillow converts it to grayscale, RGB or RGBA
    (its own rules: a palette's transparent colour is its palette colour in
    RGB and alpha 0 in RGBA, 1-bit images are 0 or 255, alpha 255 where a
    file has none), except that 16-bit grayscale is divided by 257 and
    grayscale is the float luma of RGB. Float images are refused (their
    range is unknown), and so are images of more than Pillow's
    `Image.MAX_IMAGE_PIXELS` (decompression bombs).

    Args:
        data: the file's bytes.
        channels: 1, 3 or 4.
        size: `(height, width)` to resize to (antialiased bilinear, as
            `tf.image.resize(antialias=True)`), or `None` for the file's size.
        name: the file, for messages.

    Returns:
        float32 array `(height, width, channels)`, not rounded: the caller
        crops, flips and rounds once (half to even) at the end.

    Raises:
        ValueError: naming the file, when it cannot be decoded.

    Example:
    >>> from PIL import Image
    >>> Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    >>> with open("digit.png", "rb") as file:
    ...     decode_planes(file.read(), 3, (14, 14)).shape
    (14, 14, 3)
    """
    Image = _pillow()
    mode = COLOR_MODES[channels]
    try:
        with Image.open(io.BytesIO(data)) as image:
            check_opened(image, name)
            height, width = size or (image.height, image.width)
            return _resized_planes(image, mode, int(width), int(height))
    except ValueError as error:
        if str(error).startswith(f"Cannot read image {name!r}"):
            raise
        raise _unreadable(name, error) from None
    except Exception as error:  # Pillow raises OSError subclasses and others
        raise _unreadable(name, error) from None


def check_opened(image, name="image"):
    """Refuses an opened (not yet decoded) image the pixels rules cannot take.

    Args:
        image: a `PIL.Image.Image` from `Image.open`.
        name: the file, for messages.

    Raises:
        ValueError: for float pixels or more than `Image.MAX_IMAGE_PIXELS`.
    """
    Image = _pillow()
    limit = Image.MAX_IMAGE_PIXELS
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


def _unreadable(name, error):
    Image = _pillow()
    # Pillow's message for this one names only the in-memory buffer.
    reason = (
        "not an image format Pillow can read"
        if isinstance(error, Image.UnidentifiedImageError)
        else f"{type(error).__name__}: {first_line(error)}"
    )
    return ValueError(
        f"Cannot read image {name!r} ({reason}); remove or replace the file."
    )


def _converted(image, mode):
    """`image` in Pillow `mode` (8-bit modes only)."""
    return image if image.mode == mode else image.convert(mode)


def _rounded(planes):
    return np.clip(np.round(planes), 0, 255).astype(np.uint8)


def _resized_planes(image, mode, width, height):
    """`image` as float planes resized to `(width, height)`.

    Float pixels from decoding to the end: 16-bit values / 257 unrounded,
    grayscale as float luma of RGB, then the antialiased bilinear resize
    (Pillow's BILINEAR on float planes is TensorFlow's antialiased bilinear),
    then the caller's single rounding.
    """
    from PIL import Image

    if image.mode in SIXTEEN_BIT_MODES:
        planes = np.asarray(image).astype(np.float32) / np.float32(257.0)
        if mode != "L":
            planes = np.repeat(planes[..., None], 3, axis=-1)
            if mode == "RGBA":
                planes = np.concatenate(
                    [planes, np.full_like(planes[..., :1], 255)], -1
                )
    elif mode == "L" and image.mode != "L":
        planes = np.asarray(image.convert("RGB"), dtype=np.float32) @ LUMA_WEIGHTS
    else:
        planes = np.asarray(_converted(image, mode), dtype=np.float32)
    planes = planes.reshape(planes.shape[0], planes.shape[1], -1)
    if image.size == (width, height):
        return planes
    resized = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(planes[..., c]), "F").resize(
                (width, height), Image.Resampling.BILINEAR
            )
        )
        for c in range(planes.shape[-1])
    ]
    return np.stack(resized, axis=-1)


def read_image(path, image_shape, resize_to=None):
    """One image file as uint8 pixels (see `decode_image`).

    Args:
        path: the image file.
        image_shape: the encoder's `(height, width, channels)`.
        resize_to: see `decode_image`.

    Returns:
        uint8 array of shape `image_shape`.

    Example:
    >>> from PIL import Image
    >>> Image.fromarray(np.zeros((28, 28), np.uint8)).save("digit.png")
    >>> read_image("digit.png", (28, 28, 1)).dtype
    dtype('uint8')
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ValueError(
            f"Cannot read image {path!r} ({error.strerror or error}); check the path."
        ) from None
    return decode_image(data, image_shape, name=path, resize_to=resize_to)

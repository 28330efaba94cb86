"""A cheap check that a file is an image the pipeline can decode: its header.

Decoding every image before training would cost an epoch; a corrupt body is
found when the pipeline decodes it (the error names the file).
"""

import os

from keras_mlh_runtime.errors import first_line
from keras_mlh_runtime.images import check_opened


def check_image_file(path):
    """Checks by its header that `path` is an image the pipeline can decode:
    any format and mode Pillow reads, except float images and images over
    `PIL.Image.MAX_IMAGE_PIXELS`.

    Args:
        path: the image file.

    Returns:
        The format in lower case, e.g. `"jpeg"` or `"png"`.

    Raises:
        ValueError: naming the file and the fix.

    Example:
    >>> check_image_file("photos/cat/1.jpg")  # doctest: +SKIP
    'jpeg'
    """
    from PIL import Image

    path = str(os.fspath(path))  # np.str_ would show as np.str_('...')
    try:
        if os.path.getsize(path) == 0:
            raise ValueError(f"image file {path!r} is empty; remove or replace it")
        with Image.open(path) as image:
            check_opened(image, path)
            return image.format.lower()
    except FileNotFoundError:
        raise ValueError(f"image file not found: {path!r}") from None
    except ValueError:
        raise
    except Image.DecompressionBombError as error:  # twice Pillow's limit
        raise ValueError(
            f"image file {path!r}: {first_line(error)}; shrink the image, or raise "
            "PIL.Image.MAX_IMAGE_PIXELS if it is trusted"
        ) from None
    except Image.UnidentifiedImageError:
        raise ValueError(
            f"image file {path!r} is not an image Pillow can read; convert it to "
            "PNG or JPEG"
        ) from None
    except (PermissionError, IsADirectoryError) as error:
        raise ValueError(
            f"cannot read image file {path!r} ({error.strerror or error}); check "
            "its permissions"
        ) from None
    except Exception as error:  # Pillow's header parsers raise others too
        raise ValueError(
            f"image file {path!r} is truncated or corrupt "
            f"({type(error).__name__}: {first_line(error)}); replace it"
        ) from None


def check_image_files(paths):
    """`check_image_file` on every path, stopping at the first bad one."""
    for path in paths:
        check_image_file(path)

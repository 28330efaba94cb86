"""A cheap check that a file is an image the pipeline can decode: its header.

Decoding every image before training would cost as much as an epoch, so the
files are checked by their first bytes instead (a few dozen bytes each): the
format must be JPEG, PNG, GIF or BMP, and a PNG's bit depth 1 to 16. A file
whose header is fine but whose body is truncated or corrupt is only found
when the pipeline decodes it. No TensorFlow here, so the checks run (and
fail) before it is imported.
"""

import os

# The formats `tf.io.decode_image` reads, by their magic numbers.
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
)
# Foreign formats a user may well have, named so the message can say so.
_FOREIGN = (
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"\x76\x2f\x31\x01", "OpenEXR (float)"),
    (b"PF", "PFM (float)"),
    (b"Pf", "PFM (float)"),
    (b"RIFF", "WebP"),
)
_HEADER_BYTES = 32


def check_image_file(path):
    """Checks by its header that `path` is a JPEG, PNG, GIF or BMP image.

    16-bit PNGs are accepted: the pipeline rescales them to 8 bits. Float
    and other formats (TIFF, OpenEXR, PFM, WebP, ...) are refused.

    Args:
        path: the image file.

    Returns:
        The format: `"jpeg"`, `"png"`, `"gif"` or `"bmp"`.

    Raises:
        ValueError: when the file is missing, empty, unreadable, or not an
            image of those formats; the message names the file and the fix.

    Example:
    >>> check_image_file("photos/cat/1.jpg")  # doctest: +SKIP
    'jpeg'
    """
    path = str(os.fspath(path))  # np.str_ would show as np.str_('...')
    try:
        with open(path, "rb") as f:
            header = f.read(_HEADER_BYTES)
    except FileNotFoundError:
        raise ValueError(f"image file not found: {path!r}") from None
    except OSError as error:
        raise ValueError(
            f"cannot read image file {path!r} ({error.strerror or error}); check "
            "its permissions"
        ) from None
    if not header:
        raise ValueError(f"image file {path!r} is empty; remove or replace it")
    for magic, kind in _SIGNATURES:
        if header.startswith(magic):
            if kind == "png":
                _check_png_header(path, header)
            return kind
    foreign = next((name for magic, name in _FOREIGN if header.startswith(magic)), None)
    what = f"a {foreign} file" if foreign else "not a JPEG, PNG, GIF or BMP image"
    raise ValueError(
        f"image file {path!r} is {what}; convert it to 8- or 16-bit PNG or JPEG"
    )


def _check_png_header(path, header):
    # IHDR follows the signature: length(4) type(4) width(4) height(4) depth(1).
    if len(header) < 26 or header[12:16] != b"IHDR":
        raise ValueError(f"PNG file {path!r} is truncated or corrupt; replace it")
    depth = header[24]
    if depth not in (1, 2, 4, 8, 16):
        raise ValueError(
            f"PNG file {path!r} has bit depth {depth}; replace it with an 8- or "
            "16-bit PNG"
        )


def check_image_files(paths, where=None):
    """`check_image_file` on every path, stopping at the first bad one.

    Args:
        paths: the image files.
        where: optional `where(i)` giving a location for the message (e.g.
            `"train.txt line 12"`), prepended to it.

    Raises:
        ValueError: for the first bad file.

    Example:
    >>> check_image_files(paths, where=lambda i: f"train.txt line {i + 1}")  # doctest: +SKIP
    """
    for i, path in enumerate(paths):
        try:
            check_image_file(path)
        except ValueError as error:
            if where is None:
                raise
            raise ValueError(f"{where(i)}: {error}") from None

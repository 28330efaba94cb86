"""The streaming input pipeline: image files -> batches of uint8 pixels.

Files are decoded by the runtime's reader (`keras_mlh_runtime.images`), so
training and the exported encoder give a file the same pixels. Before
training only their headers are checked: decoding all would cost an epoch.
"""

import os
import re

import numpy as np

from keras_mlh_runtime.errors import first_line
from keras_mlh_runtime.images import check_opened, decode_planes

# Channels of the color modes `from_directory` and the CLI accept.
COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}


def image_dataset(
    paths,
    labels=None,
    image_size=(64, 64),
    channels=3,
    batch_size=64,
    training=False,
    resize_to=None,
    horizontal_flip=False,
    seed=0,
):
    """A batched, prefetched `tf.data.Dataset` of uint8 images read from files.

    Args:
        labels: `None` (images only) or one label per path.
        training: shuffle the files each epoch, crop at random and flip (with
            `horizontal_flip`); otherwise keep the order, crop at the center.
        resize_to: `None` resizes straight to `image_size`, else resizes to
            it and crops `image_size` out of it.
        seed: seed of the shuffle, the crops and the flips.

    Returns:
        A `tf.data.Dataset` of image batches, or of `(images, labels)`.

    Example:
    >>> ds = image_dataset(["a.jpg", "b.png"], [0, 1], image_size=(32, 32))  # doctest: +SKIP
    """
    import tensorflow as tf

    paths = np.asarray([str(p) for p in paths])
    height, width = (int(s) for s in image_size)
    if resize_to is not None:
        resize_to = tuple(int(s) for s in resize_to)
        if resize_to[0] < height or resize_to[1] < width:
            raise ValueError(
                f"`resize_to`={resize_to} is smaller than the crop "
                f"`image_size`={(height, width)}; resize to at least the crop size."
            )
    items = (paths,) if labels is None else (paths, np.asarray(labels))
    ds = tf.data.Dataset.from_tensor_slices(items)
    if training:
        # Names are shuffled, not pixels: a full shuffle in a few MB.
        ds = ds.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
        randoms = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        ds = tf.data.Dataset.zip((ds, randoms.batch(2)))
    else:
        ds = ds.map(lambda *item: (item, tf.zeros((2,), tf.int64)))

    size = resize_to or (height, width)

    def decode(contents, path):
        return decode_planes(contents, channels, size, name=path.decode())

    def load(item, random_seed):
        # Float pixels from the runtime's reader, rounded after crop and flip.
        image = tf.numpy_function(
            decode, [tf.io.read_file(item[0]), item[0]], tf.float32, stateful=False
        )
        image.set_shape((*size, channels))
        if resize_to is not None and training:
            crop = (height, width, channels)
            image = tf.image.stateless_random_crop(image, crop, seed=random_seed)
        elif resize_to is not None:  # central
            image = tf.image.resize_with_crop_or_pad(image, height, width)
        if training and horizontal_flip:
            image = tf.image.stateless_random_flip_left_right(
                image, seed=random_seed[::-1]
            )
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image if labels is None else (image, item[1])

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def iterate_batches(dataset):
    """The numpy batches of `dataset`, a decoding failure as a `ValueError`."""
    import tensorflow as tf

    try:
        yield from dataset.as_numpy_iterator()
    except tf.errors.OpError as error:
        raise decode_failure(error) from None


def decode_failure(error):
    """The `ValueError` for a pipeline's TensorFlow op error, else `None`."""
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    # The reader's own one-line message (it names the file), without the
    # Python traceback TensorFlow appends to it.
    named = re.search(r"Cannot read image .*", error.message)
    if named:
        return ValueError(named.group(0).strip())
    # The op error's own words, without its graph-node decorations.
    text = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:\w+\]", "", error.message)
    return ValueError(
        "An image file could not be decoded although its header looked fine "
        f"(truncated or corrupt): {' '.join(text.split()) or type(error).__name__}. "
        "Find it with PIL (Image.open(path).load()) and replace it."
    )


def check_image_file(path):
    """Checks by its header that `path` is an image the pipeline decodes (what
    Pillow reads, but float images and decompression bombs); a `ValueError`
    names the file and the fix.

    Returns:
        The format in lower case, e.g. `"jpeg"`.

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
    for path in paths:
        check_image_file(path)

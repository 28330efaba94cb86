"""The streaming input pipeline: image files -> batches of uint8 pixels.

A `tf.data` pipeline (the Keras 3 input pipeline under every backend: it
yields numpy-convertible tensors that JAX and PyTorch models take as well):
the file list is shuffled (names only, so a full shuffle costs a few bytes
per image, never pixels), files are read and decoded in parallel, resized,
cropped and flipped on the fly, batched and prefetched. Memory is a few
batches of pixels whatever the number of images.

PNGs are decoded at 16 bits and divided by 257: 8-bit images come out
exactly as stored, and 16-bit PNGs (which 8-bit loaders clip to all-255) are
rescaled to 8 bits. JPEGs are decoded with the accurate integer DCT, and
the TensorFlow-free runtime reader (`keras_mlh_runtime.images`) follows the
same rules and the same antialiased bilinear resize, so a file gives the same
pixels to training and to the exported encoder. Images that are not JPEG, PNG, GIF or BMP are
refused before the pipeline starts (`keras_mlh.datasets.image_check`).
"""

import re

import numpy as np

# Channels of the color modes `from_directory` and the CLI accept.
COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


def decode_image(contents, channels):
    """Decodes an encoded image into float32 pixels in [0, 255].

    Args:
        contents: a scalar string tensor, the file's bytes.
        channels: 1, 3 or 4.

    Returns:
        float32 tensor `(height, width, channels)`; the first frame of a GIF.

    Example:
    >>> image = decode_image(tf.io.read_file("deep16.png"), channels=1)  # doctest: +SKIP
    """
    import tensorflow as tf

    # BMP and GIF decoders cannot give one channel: grayscale is made from
    # RGB. PNGs are decoded at 16 bits then / 257: exact for 8-bit files
    # (libpng expands x to x * 257), 65535 -> 255 for 16-bit ones. The other
    # formats are 8-bit only (their 16-bit conversion would be x * 256).
    # JPEGs use the accurate integer DCT, as Pillow (the runtime's reader)
    # does: TensorFlow's default fast DCT is off by up to 6 levels; the
    # JPEG decoder has no alpha, opaque (255) as Pillow's RGB -> RGBA.
    decode_channels = 3 if channels == 1 else channels

    def png():
        image = tf.io.decode_png(contents, channels=decode_channels, dtype=tf.uint16)
        return tf.cast(image, tf.float32) / 257.0

    def jpeg():
        image = tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE")
        if decode_channels == 4:
            opaque = tf.fill(tf.shape(image[..., :1]), tf.constant(255, tf.uint8))
            image = tf.concat([image, opaque], -1)
        return tf.cast(image, tf.float32)

    def other():
        image = tf.io.decode_image(
            contents, channels=decode_channels, expand_animations=False
        )
        return tf.cast(image, tf.float32)

    image = tf.case(
        [
            (tf.equal(tf.strings.substr(contents, 0, 8), PNG_SIGNATURE), png),
            (tf.equal(tf.strings.substr(contents, 0, 3), JPEG_SIGNATURE), jpeg),
        ],
        default=other,
    )
    if channels != 1:
        return image
    # ITU-R 601-2 luma, Pillow's "L" weights: they sum to exactly 1, so a
    # grayscale file expanded to RGB comes back unchanged (tf.image's weights
    # sum to 0.9999 and shift some pixels by one level).
    weights = tf.constant([0.299, 0.587, 0.114], tf.float32)
    return tf.reduce_sum(image * weights, axis=-1, keepdims=True)


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
    """A batched, prefetched `tf.data.Dataset` of images read from files.

    Args:
        paths: the image files, in order.
        labels: `None` (the dataset yields images only) or one label per
            path: class ids `(n,)` or multi-hot rows `(n, num_classes)`.
        image_size: `(height, width)` of the images yielded.
        channels: 1 (grayscale), 3 (RGB) or 4 (RGBA).
        batch_size: images per batch.
        training: shuffle the files each epoch (seeded), crop at random and
            flip (with `horizontal_flip`); otherwise keep the order, crop at
            the center.
        resize_to: `None` resizes straight to `image_size`; `(height, width)`
            resizes to it first, then crops `image_size` out of it (the
            "resize 256, crop 224" recipe).
        horizontal_flip: flip half of the training images left-right.
        seed: seed of the shuffle, the crops and the flips.

    Returns:
        A `tf.data.Dataset` of uint8 `(batch, height, width, channels)`
        images, or of `(images, labels)` pairs.

    Example:
    >>> ds = image_dataset(["a.jpg", "b.png"], [0, 1], image_size=(32, 32))  # doctest: +SKIP
    >>> images, labels = next(iter(ds))  # doctest: +SKIP
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

    def load(item, random_seed):
        image = decode_image(tf.io.read_file(item[0]), channels)
        image = tf.image.resize(
            image, resize_to or (height, width), method="bilinear", antialias=True
        )
        if resize_to is not None:
            image = _crop(image, height, width, channels, training, random_seed)
        if training and horizontal_flip:
            image = tf.image.stateless_random_flip_left_right(
                image, seed=random_seed[::-1]
            )
        image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return image if labels is None else (image, item[1])

    ds = ds.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def _crop(image, height, width, channels, training, random_seed):
    import tensorflow as tf

    if training:
        return tf.image.stateless_random_crop(
            image, (height, width, channels), seed=random_seed
        )
    top = (tf.shape(image)[0] - height) // 2
    left = (tf.shape(image)[1] - width) // 2
    return image[top : top + height, left : left + width]


def iterate_batches(dataset):
    """The numpy batches of `dataset`, a decoding failure as a `ValueError`.

    Args:
        dataset: a dataset from `image_dataset`.

    Yields:
        numpy batches (images, or `(images, labels)`).

    Example:
    >>> for images in iterate_batches(image_dataset(paths)):  # doctest: +SKIP
    ...     codes.append(model.encode(images))
    """
    import tensorflow as tf

    iterator = dataset.as_numpy_iterator()
    while True:
        try:
            batch = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as error:
            raise decode_failure(error) from None
        yield batch


def decode_failure(error):
    """The `ValueError` to raise for a TensorFlow error of the pipeline.

    Args:
        error: any exception, e.g. from `model.fit` on a streamed dataset.

    Returns:
        A `ValueError` that says an image could not be decoded, or `None`
        when `error` is not a TensorFlow op error.
    """
    import sys

    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    return ValueError(
        "An image file could not be decoded although its header looked fine "
        f"(truncated or corrupt): {op_error_text(error)}. Find it with PIL "
        "(Image.open(path).load()) and replace it."
    )


def op_error_text(error):
    """A TensorFlow op error's own words, without its graph-node decorations."""
    text = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:\w+\]", "", error.message)
    return " ".join(text.split()) or type(error).__name__

"""Image files as a model's input, decoded by the runtime's reader (as served)."""

import dataclasses
import os
import re
import sys

import numpy as np

from keras_mlh_runtime.errors import first_line
from keras_mlh_runtime.images import check_opened, decode_planes

COLOR_CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
SMALL_BACKBONE = "small"
SMALL_IMAGE_SIZE = (64, 64)  # `from_directory`'s default
NAMED_IMAGE_SIZE = (224, 224)


def named_resize(size):
    """The resize before a named backbone's crop of `size`: 224 -> 256."""
    return tuple(round(side * (256 / 224)) for side in size)


@dataclasses.dataclass(frozen=True)
class ImageRecipe:
    """The image size, the resize before its crop (`None`: none), training flips.

    Example:
    >>> ImageRecipe.for_backbone("resnet50")
    ImageRecipe(image_size=(224, 224), resize_to=(256, 256), horizontal_flip=True)
    """

    image_size: tuple = SMALL_IMAGE_SIZE
    resize_to: tuple | None = None
    horizontal_flip: bool = False

    @classmethod
    def for_backbone(
        cls, backbone, image_size=None, resize_to=None, horizontal_flip=None
    ):
        """`backbone`'s recipe (224 of 256, flips; small: 64), parts overridden."""
        named = backbone != SMALL_BACKBONE
        size = tuple(image_size or (NAMED_IMAGE_SIZE if named else SMALL_IMAGE_SIZE))
        resize = tuple(resize_to or (named_resize(size) if named else size))
        if resize[0] < size[0] or resize[1] < size[1]:
            raise ValueError(
                f"--resize-size {resize[0]}x{resize[1]} is smaller than the crop "
                f"--image-size {size[0]}x{size[1]}; resize to at least the crop size."
            )
        flip = named if horizontal_flip is None else bool(horizontal_flip)
        return cls(size, None if resize == size else resize, flip)

    def run_info(self, color_mode):
        """The recipe, with `color_mode`, as `run.json` records it."""
        cropped = self.resize_to is not None
        return {
            "image_size": list(self.image_size),
            "resize_to": list(self.resize_to) if cropped else None,
            "crop": "random in training, central otherwise" if cropped else None,
            "horizontal_flip": bool(self.horizontal_flip),
            "color_mode": color_mode,
        }


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
        training: shuffle, crop at random, flip; else file order, central crop.
        resize_to: the size to resize to before cropping `image_size`, or `None`.

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

    def decode(contents, path):  # float pixels, rounded after crop and flip
        return decode_planes(contents, channels, size, name=path.decode())

    def load(item, random_seed):
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
    tf = sys.modules.get("tensorflow")
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    # The reader's own message names the file; TensorFlow appends a traceback.
    named = re.search(r"Cannot read image .*", error.message)
    if named:
        return ValueError(named.group(0).strip())
    text = re.sub(r"\{\{[^}]*\}\}|\[\[.*?\]\]|\[Op:\w+\]", "", error.message)
    return ValueError(
        "An image file could not be decoded although its header looked fine "
        f"(truncated or corrupt): {' '.join(text.split()) or type(error).__name__}. "
        "Find it with PIL (Image.open(path).load()) and replace it."
    )


def check_image_file(path):
    """Checks by its header that `path` is an image the pipeline decodes.

    Returns:
        The format in lower case, e.g. `"jpeg"`.

    Example:
    >>> check_image_file("photos/cat/1.jpg")  # doctest: +SKIP
    'jpeg'
    """
    from PIL import Image

    path = str(os.fspath(path))  # np.str_ would show as np.str_('...')
    if not os.path.isfile(path):  # a folder, or under a file (a.jpg/b.jpg) too
        raise ValueError(f"image file not found: {path!r} (missing, or a folder)")
    try:
        with Image.open(path) as image:
            check_opened(image, path)  # float pixels, decompression bombs
            return image.format.lower()
    except ValueError:
        raise
    except Exception as error:  # Pillow's header parsers raise many kinds
        if os.path.getsize(path) == 0:
            problem = "is empty; remove or replace it"
        elif isinstance(error, Image.UnidentifiedImageError):
            problem = "is not an image Pillow can read; convert it to PNG or JPEG"
        elif isinstance(error, Image.DecompressionBombError):  # twice the limit
            problem = f"is too large ({first_line(error)}); shrink it, or raise "
            problem += "PIL.Image.MAX_IMAGE_PIXELS if it is trusted"
        elif isinstance(error, PermissionError):
            problem = f"cannot be read ({error.strerror}); check its permissions"
        else:
            problem = f"is truncated or corrupt ({type(error).__name__}: "
            problem += f"{first_line(error)}); replace it"
        raise ValueError(f"image file {path!r} {problem}") from None

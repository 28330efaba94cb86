"""What `MLH.fit` and `MLH.evaluate` accept: one rule, checked before any work."""

import sys

import numpy as np

from keras_mlh.labels import check_labels
from keras_mlh_runtime.errors import validate_images


def is_tf_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (never imports TensorFlow)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)


def check_inputs(x, y, num_classes, image_shape=None, name="x"):
    """Checks `fit`/`evaluate`'s `x` (arrays or a `tf.data.Dataset` of batches)
    and `y`; returns `(x, one image's shape or None)`, grayscale arrays with
    a channel axis (generators and `PyDataset`s pass as they are)."""
    if is_tf_dataset(x):
        spec = x.element_spec
        if not isinstance(spec, tuple) or len(spec) < 2:
            raise ValueError(
                f"`{name}` must yield (images, labels) pairs. "
                f"Received element_spec={spec}"
            )
        if spec[0].shape.rank == 3:
            raise ValueError(
                f"`{name}` yields rank-3 images of shape {spec[0].shape}: batch "
                "single images first, e.g. dataset.batch(64), or give batches "
                "of grayscale images a channel axis, e.g. "
                "dataset.map(lambda x, y: (x[..., None], y))."
            )
        first = next(iter(x.take(1)), None)
        if first is None:
            raise ValueError(f"`{name}` is empty: it yields no batch.")
        images, labels = np.asarray(first[0]), np.asarray(first[1])
    elif x is None or y is None:
        return x, None  # Keras consumes generators and PyDatasets as they are.
    else:
        images, labels = x, y
    images = validate_images(images, image_shape, name=f"{name} images")
    check_labels(labels, num_classes, len(images), name=f"{name} labels")
    return (x if is_tf_dataset(x) else images), images.shape[1:]

"""What `MLH.fit` and `MLH.evaluate` accept: one rule, checked before any work."""

import contextlib
import sys

import numpy as np

from keras_mlh.labels import check_labels
from keras_mlh_runtime.errors import validate_images


def is_tf_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (never imports TensorFlow: a program
    that made a dataset has it loaded)."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(x, tf.data.Dataset)


def check_inputs(x, y, num_classes, image_shape=None, name="x"):
    """Validates what `fit`/`evaluate` got; returns what they should use.

    Args:
        x: images `(n, height, width[, channels])`, or a `tf.data.Dataset` of
            `(images, labels)` batches; generators and `PyDataset`s pass as is.
        y: labels of array images: class ids or multi-hot rows.
        num_classes: the model's number of classes.
        image_shape: the image shape the model was built for, if built.
        name: the argument's name in error messages.

    Returns:
        `(x, shape of one image or None)`; grayscale arrays gain their channel
        axis.

    Example:
    >>> x, shape = check_inputs(np.zeros((2, 8, 8), "uint8"), [0, 1], 3)
    >>> x.shape, shape
    ((2, 8, 8, 1), (8, 8, 1))
    """
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


def prepare_fit(model, x, y, validation_data, kwargs):
    """`MLH.fit`'s work before Keras's: the inputs checked, the model and its
    optimizer built from the first batch, so that `BackupAndRestore` finds
    every variable. Returns `(x, validation_data, kwargs)` for Keras's fit."""
    x, image_shape = check_inputs(x, y, model.num_classes, model.image_shape)
    # Inside the strategy the model was made under, as Keras's own fit does.
    strategy = getattr(model, "distribute_strategy", None)
    with strategy.scope() if strategy else contextlib.nullcontext():
        if not model.built and image_shape is not None:
            model.build((None, *image_shape))
        optimizer = getattr(model, "optimizer", None)
        if model.built and optimizer is not None and not optimizer.built:
            optimizer.build(model.trainable_variables)
    if is_tf_dataset(x):  # Keras ignores `shuffle` here but warns of its default
        kwargs = {"shuffle": False, **kwargs}
    name = "validation_data"
    if isinstance(validation_data, tuple):
        images, _ = check_inputs(
            *validation_data[:2], model.num_classes, model.image_shape, name
        )
        validation_data = (images, *validation_data[1:])
    elif validation_data is not None:
        check_inputs(validation_data, None, model.num_classes, model.image_shape, name)
    return x, validation_data, kwargs

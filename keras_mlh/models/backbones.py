"""MLH's backbones: the small default CNN and the `keras.applications` ones."""

import keras
import numpy as np
from keras import ops

from keras_mlh.models.applications import APPLICATIONS


def SmallConvBackbone(
    filters=(32, 64, 128), feature_dim=256, dropout=0.0, name="small_conv_backbone"
):
    """The default backbone, a small CNN for MNIST/CIFAR-size images.

    Blocks of `Conv3x3 -> BatchNorm -> ReLU -> MaxPool2`, global average
    pooling, dropout, a ReLU dense layer. Batch norm momentum 0.9: with 0.99 the
    statistics lag after a small dataset's few hundred steps; codes collapse.

    Returns:
        A `keras.Sequential` mapping images to `(batch, feature_dim)` features.

    Example:
    >>> backbone = SmallConvBackbone()
    >>> tuple(backbone(keras.ops.zeros((2, 28, 28, 1))).shape)
    (2, 256)
    """
    layers = []
    for i, f in enumerate(filters):
        layers += [
            keras.layers.Conv2D(
                int(f), 3, padding="same", use_bias=False, name=f"conv{i}"
            ),
            keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}"),
            keras.layers.ReLU(name=f"relu{i}"),
            keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}"),
        ]
    layers += [
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dropout(float(dropout), name="dropout"),
        keras.layers.Dense(int(feature_dim), activation="relu", name="dense"),
    ]
    return keras.Sequential(layers, name=name)


@keras.saving.register_keras_serializable(package="keras_mlh")
class CaffePreprocessing(keras.layers.Layer):
    """ResNet50's ImageNet preprocessing as a layer: RGB to BGR, minus the means."""

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, images):
        # A numpy constant, not a tensor attribute (an extra ONNX input), and
        # ops.subtract: torch.onnx loses the input through `tensor - ndarray`.
        mean = np.asarray(self.MEAN_BGR, dtype="float32")
        return ops.subtract(ops.flip(images, axis=-1), mean)

    def compute_output_shape(self, input_shape):
        return input_shape


def application_backbone(name, input_shape, weights=None):
    """A `keras.applications` backbone by name, with its ImageNet preprocessing."""
    key = name.lower().replace("_", "").replace("-", "")
    if key not in APPLICATIONS:
        raise ValueError(
            f"Unknown backbone {name!r}. Use one of {sorted(APPLICATIONS)}, or pass "
            "any keras.Model / keras.layers.Layer that maps images to features."
        )
    input_shape = tuple(input_shape)
    if input_shape[-1] != 3:
        raise ValueError(
            f"Backbone {name!r} expects 3-channel (RGB) images. Received "
            f"images with {input_shape[-1]} channel(s); convert them to RGB, e.g. "
            "np.repeat(x, 3, axis=-1) for grayscale."
        )
    constructor = getattr(keras.applications, APPLICATIONS[key])
    base = constructor(
        include_top=False, weights=weights, input_shape=input_shape, pooling="avg"
    )
    if key != "resnet50":
        return base
    images = keras.Input(shape=input_shape, name="pixels")
    features = base(CaffePreprocessing(name="caffe_preprocessing")(images))
    return keras.Model(images, features, name="resnet50_backbone")

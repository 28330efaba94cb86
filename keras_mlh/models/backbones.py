"""MLH's backbones: the small default CNN and the `keras.applications` ones."""

import keras
import numpy as np
from keras import ops

from keras_mlh.models.applications import APPLICATIONS


@keras.saving.register_keras_serializable(package="keras_mlh")
class SmallConvBackbone(keras.layers.Layer):
    """A small CNN for small images (MNIST, CIFAR size): the default backbone.

    Blocks of `Conv3x3 -> BatchNorm -> ReLU -> MaxPool2`, global average
    pooling, then a ReLU dense layer. Batch norm momentum is 0.9: with 0.99
    the moving statistics still lag after the few hundred steps of a small
    dataset, and inference codes collapse.

    Args:
        filters: filters of each convolution block.
        feature_dim: size of the output features.
        dropout: dropout rate before the dense layer (training only).
        **kwargs: standard `keras.layers.Layer` arguments.

    Example:
    >>> backbone = SmallConvBackbone()
    >>> tuple(backbone(keras.ops.zeros((2, 28, 28, 1))).shape)
    (2, 256)
    """

    def __init__(self, filters=(32, 64, 128), feature_dim=256, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = tuple(int(f) for f in filters)
        self.feature_dim = int(feature_dim)
        self.dropout = float(dropout)

    def build(self, input_shape):
        self.blocks = []
        shape = tuple(input_shape)
        for i, f in enumerate(self.filters):
            block = [
                keras.layers.Conv2D(
                    f, 3, padding="same", use_bias=False, name=f"conv{i}"
                ),
                keras.layers.BatchNormalization(momentum=0.9, name=f"bn{i}"),
                keras.layers.ReLU(name=f"relu{i}"),
                keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}"),
            ]
            for layer in block:
                layer.build(shape)
                shape = layer.compute_output_shape(shape)
            self.blocks.append(block)
        self.pooling = keras.layers.GlobalAveragePooling2D(name="pool")
        self.drop = keras.layers.Dropout(self.dropout, name="dropout")
        self.dense = keras.layers.Dense(
            self.feature_dim, activation="relu", name="dense"
        )
        self.dense.build((shape[0], shape[-1]))

    def call(self, images, training=None):
        x = images
        for conv, bn, relu, pool in self.blocks:
            x = pool(relu(bn(conv(x), training=training)))
        x = self.drop(self.pooling(x), training=training)
        return self.dense(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.feature_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": list(self.filters),
            "feature_dim": self.feature_dim,
            "dropout": self.dropout,
        }


@keras.saving.register_keras_serializable(package="keras_mlh")
class CaffePreprocessing(keras.layers.Layer):
    """ResNet50's ImageNet preprocessing: RGB to BGR, minus the channel means.

    `keras.applications.resnet50.preprocess_input` as a layer, saved with the
    model and exported to ONNX (a `Lambda` would not load in safe mode).

    Example:
    >>> tuple(CaffePreprocessing()(np.full((1, 2, 2, 3), 128.0)).shape)
    (1, 2, 2, 3)
    """

    MEAN_BGR = (103.939, 116.779, 123.68)

    def call(self, images):
        # A numpy constant made here, not a tensor attribute: a captured
        # tensor would become an extra input of the exported ONNX graph.
        # ops.subtract, not `-`: torch's tracer (torch.onnx) loses the input
        # through `tensor - ndarray` and exports a graph without it.
        mean = np.asarray(self.MEAN_BGR, dtype="float32")
        return ops.subtract(ops.flip(images, axis=-1), mean)

    def compute_output_shape(self, input_shape):
        return input_shape


def application_backbone(name, input_shape, weights=None):
    """A `keras.applications` model by name: pixels in [0, 255] in, pooled
    features out, with the preprocessing its ImageNet weights expect.

    Args:
        name: one of `APPLICATIONS` (case-insensitive).
        input_shape: `(height, width, 3)`.
        weights: `None` (random init, offline) or `"imagenet"` (downloads).

    Returns:
        A functional `keras.Model` mapping images to pooled features.
    """
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

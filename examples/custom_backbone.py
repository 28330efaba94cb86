"""MLH on a `keras.applications` backbone (ResNet50 here).

Offline, the backbone starts from random weights (`backbone_weights=None`). With
network access, use ImageNet weights instead, which is what real image
retrieval wants:

    model = keras_mlh.MLH(num_classes=10, bits=64, backbone="resnet50",
                          backbone_weights="imagenet", image_size=(224, 224))

A named backbone gets raw 0..255 pixels and applies the preprocessing its
ImageNet weights were trained with (ResNet50's "caffe" mean subtraction;
EfficientNet, MobileNetV3 and ConvNeXt rescale inside). Any Keras model that
maps images to a feature vector works as well: pass it as `backbone=` (it then
gets pixels scaled to [0, 1] unless you set `input_scale`).

    python examples/custom_backbone.py --epochs 1
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--train-images", type=int, default=512)
    args = parser.parse_args(argv)

    import numpy as np

    import keras_mlh
    from keras_mlh.training import default_training

    data = keras_mlh.datasets.mnist5k(batch_size=32)
    # ResNet50 wants 3 channels and at least 32x32 pixels: repeat the gray
    # channel here, and let the model resize inside (so exported encoders
    # accept the original 28x28 size).
    x_train = np.repeat(data.x_train[: args.train_images], 3, axis=-1)
    y_train = data.y_train[: args.train_images]
    x_query = np.repeat(data.x_query[:200], 3, axis=-1)

    model = keras_mlh.MLH(
        num_classes=10,
        bits=32,
        backbone="resnet50",
        backbone_weights=None,  # "imagenet" with network access
        image_size=(32, 32),
    )
    steps = int(np.ceil(len(x_train) / 32))
    recipe = default_training(epochs=args.epochs, steps_per_epoch=steps)
    model.compile(optimizer=recipe.optimizer)
    model.fit(x_train, y_train, batch_size=32, epochs=recipe.epochs, verbose=2)
    codes = model.encode(x_query)
    print(
        f"ResNet50 backbone: {model.count_params():,} parameters, codes {codes.shape}"
    )
    return codes


if __name__ == "__main__":
    main()

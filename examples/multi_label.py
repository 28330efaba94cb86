"""Multi-label hashing with multi-hot labels.

Builds a multi-label set from MNIST digits: each image is two digits side by
side, labelled with both (a 10-column multi-hot row). Relevance at evaluation
is "shares at least one label", the deep-hashing convention for MS-COCO.

    python examples/multi_label.py --epochs 5
"""

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def pairs_of_digits(images, labels, count, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    first, second = rng.integers(0, len(images), (2, count))
    pictures = np.concatenate([images[first], images[second]], axis=2)  # 28x56
    multi_hot = np.zeros((count, 10), dtype="float32")
    multi_hot[np.arange(count), labels[first]] = 1
    multi_hot[np.arange(count), labels[second]] = 1
    return pictures, multi_hot


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--images", type=int, default=3000, help="two-digit images")
    args = parser.parse_args(argv)

    import keras_mlh
    from keras_mlh.datasets import from_arrays
    from keras_mlh.metrics import mean_average_precision
    from keras_mlh.training import default_training

    digits = keras_mlh.datasets.mnist5k()
    images, multi_hot = pairs_of_digits(
        digits.x_train, digits.y_train, args.images, seed=0
    )
    data = from_arrays(images, multi_hot, num_queries=args.images // 6, seed=0)
    print(
        f"{len(data.x_train)} training images {data.image_shape}, "
        f"{int(data.y_train.sum(1).mean() * 10) / 10} labels per image"
    )

    model = keras_mlh.MLH(num_classes=10, bits=32)
    recipe = default_training(epochs=args.epochs, steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer)
    model.fit(data.train, epochs=recipe.epochs, validation_data=data.query, verbose=2)
    score = mean_average_precision(
        model.encode(data.x_query),
        data.y_query,
        model.encode(data.x_database),
        data.y_database,
    )
    print(f"multi-label mAP@all (relevant = shares a label): {score:.4f}")
    return score


if __name__ == "__main__":
    main()

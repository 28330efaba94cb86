"""The default training recipe that `keras-mlh train`, the examples and the
benchmarks share. Keras is imported only when a recipe is made."""

import collections

# 30, not 15: on the protocols' validation splits (32 bits, 3 paired seeds)
# 30 epochs raised MLH's mean mAP by 0.8 points over the four MNIST-5k
# protocols and Fashion-MNIST (benchmarks/README.md, "Training length").
DEFAULT_EPOCHS = 30
DEFAULT_LEARNING_RATE = 1e-3

# A `keras.optimizers.Optimizer` and the `epochs` its schedule is made for.
TrainingRecipe = collections.namedtuple("TrainingRecipe", ["optimizer", "epochs"])


def default_training(epochs=None, steps_per_epoch=None, learning_rate=None):
    """Adam with a cosine decay of the learning rate over the whole run.

    Args:
        epochs: defaults to `DEFAULT_EPOCHS`.
        steps_per_epoch: batches per epoch; without it the rate is constant.
        learning_rate: peak learning rate, `DEFAULT_LEARNING_RATE` by default.

    Returns:
        A `TrainingRecipe` for `compile(optimizer=...)` and `fit(epochs=...)`.

    Example:
    >>> recipe = default_training(epochs=10, steps_per_epoch=63)
    >>> recipe.epochs, type(recipe.optimizer).__name__
    (10, 'Adam')
    """
    import keras

    epochs = DEFAULT_EPOCHS if epochs is None else int(epochs)
    if epochs < 1:
        raise ValueError(f"`epochs` must be >= 1. Received: epochs={epochs}")
    rate = DEFAULT_LEARNING_RATE if learning_rate is None else float(learning_rate)
    if rate <= 0:
        raise ValueError(f"`learning_rate` must be > 0. Received: {learning_rate}")
    if steps_per_epoch:
        rate = keras.optimizers.schedules.CosineDecay(
            rate, decay_steps=epochs * int(steps_per_epoch), alpha=0.01
        )
    return TrainingRecipe(keras.optimizers.Adam(rate), epochs)

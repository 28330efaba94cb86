import keras
import pytest

from keras_mlh.training import DEFAULT_EPOCHS, default_training


def test_cosine_schedule_decays_over_the_whole_run():
    recipe = default_training(epochs=4, steps_per_epoch=10, learning_rate=1e-2)
    assert recipe.epochs == 4
    assert isinstance(recipe.optimizer, keras.optimizers.Adam)
    start = float(recipe.optimizer._learning_rate(0))
    middle = float(recipe.optimizer._learning_rate(20))
    end = float(recipe.optimizer._learning_rate(40))
    assert start == pytest.approx(1e-2)
    assert end == pytest.approx(1e-4, rel=1e-3)
    assert end < middle < start


def test_without_steps_the_rate_is_constant():
    recipe = default_training()
    assert recipe.epochs == DEFAULT_EPOCHS
    assert float(recipe.optimizer.learning_rate) == pytest.approx(1e-3)


@pytest.mark.parametrize(
    "kwargs, match",
    [({"epochs": 0}, "epochs"), ({"learning_rate": 0}, "learning_rate")],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        default_training(**kwargs)

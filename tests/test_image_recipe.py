"""`ImageRecipe`: the one rule for how image files become a model's input."""

import pytest

from keras_mlh.datasets import file_data
from keras_mlh.datasets.image_pipeline import SMALL_IMAGE_SIZE, ImageRecipe


def _default_size(function):
    import inspect

    return inspect.signature(function).parameters["image_size"].default


def test_the_small_size_is_from_directorys_default():
    assert SMALL_IMAGE_SIZE == _default_size(file_data.from_files)


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        ({"backbone": "small"}, ((64, 64), None, False)),
        ({"backbone": "resnet50"}, ((224, 224), (256, 256), True)),
        ({"backbone": "resnet50", "image_size": (112, 96)}, ((112, 96), (128, 110), True)),
        ({"backbone": "resnet50", "resize_to": (224, 224)}, ((224, 224), None, True)),
        ({"backbone": "small", "resize_to": (72, 72), "horizontal_flip": True}, ((64, 64), (72, 72), True)),
    ],
)  # fmt: skip
def test_for_backbone(kwargs, expected):
    recipe = ImageRecipe.for_backbone(**kwargs)
    assert (recipe.image_size, recipe.resize_to, recipe.horizontal_flip) == expected


def test_a_resize_smaller_than_the_crop_is_refused():
    with pytest.raises(ValueError, match="smaller than the crop"):
        ImageRecipe.for_backbone("small", image_size=(32, 32), resize_to=(16, 40))


@pytest.mark.parametrize(
    "recipe, expected",
    [
        (ImageRecipe.for_backbone("resnet50").run_info("rgb"), (256, 256)),
        (ImageRecipe().run_info("rgb"), None),
        ({"resize_to": ["256", 256]}, None),
        (None, None),
    ],
)
def test_run_info_round_trips_its_resize(recipe, expected, tmp_path):
    import json

    from keras_mlh.encoding import run_resize_to

    (tmp_path / "run.json").write_text(json.dumps({"image_recipe": recipe}))
    assert run_resize_to(str(tmp_path / "model.keras")) == expected
    assert run_resize_to(str(tmp_path / "elsewhere" / "model.keras")) is None
    assert run_resize_to(None) is None


def test_run_info_records_the_crop():
    info = ImageRecipe.for_backbone("resnet50").run_info("rgb")
    assert info["crop"] == "random in training, central otherwise"
    assert ImageRecipe().run_info("rgb")["crop"] is None

import builtins

import keras
import numpy as np
import pytest

import keras_mlh
from keras_mlh.augmentation import default_augmentation, keras_cv_layer


def _images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 28, 28, 1)).astype("float32")


def test_default_augmentation_changes_images_only_in_training():
    augmentation = default_augmentation()
    x = _images()
    np.testing.assert_array_equal(np.asarray(augmentation(x, training=False)), x)
    assert np.abs(np.asarray(augmentation(x, training=True)) - x).sum() > 0


def test_keras_cv_layer_trains_and_saves_inside_mlh(tmp_path):
    pytest.importorskip("keras_cv")
    cutout = keras_cv_layer("RandomCutout", height_factor=0.3, width_factor=0.3)
    x = _images()
    assert np.abs(np.asarray(cutout(x, training=True)) - x).sum() > 0
    model = keras_mlh.MLH(num_classes=3, bits=8, augmentation=[cutout])
    model.compile()
    model.fit(x, np.arange(6) % 3, epochs=1, verbose=0)
    path = str(tmp_path / "cv.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_array_equal(again.encode(x), model.encode(x))


def test_keras_cv_unknown_layer():
    pytest.importorskip("keras_cv")
    with pytest.raises(ValueError, match="no layer named"):
        keras_cv_layer("NoSuchLayer")


def test_keras_cv_missing_says_how_to_install(monkeypatch):
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):
        if name.startswith("keras_cv"):
            raise ImportError("blocked")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    monkeypatch.delitem(__import__("sys").modules, "keras_cv.layers", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "keras_cv", raising=False)
    with pytest.raises(ImportError, match=r"keras-mlh\[keras-cv\]"):
        keras_cv_layer("RandomCutout", height_factor=0.3, width_factor=0.3)

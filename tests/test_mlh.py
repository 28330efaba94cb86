import keras
import numpy as np
import pytest
from helpers import run_python

import keras_mlh
from keras_mlh import MLH, MODES


def _fit(model, data, epochs=1, **kwargs):
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    return model.fit(data.train, epochs=epochs, verbose=0, **kwargs)


@pytest.fixture(scope="module")
def trained_in(small_mnist):
    """`trained_in(mode)`: `(model, history)`, a 32-bit MLH trained 2 epochs
    in `mode`, trained once per module (on JAX each new model compiles anew)."""
    cache = {}

    def train(mode):
        if mode not in cache:
            keras.utils.set_random_seed(0)
            model = MLH(num_classes=10, bits=32, mode=mode)
            query = small_mnist.query
            history = _fit(model, small_mnist, epochs=2, validation_data=query)
            cache[mode] = model, history.history
        return cache[mode]

    return train


@pytest.fixture(scope="module")
def trained(trained_in):
    return trained_in("mlh")[0]


# ------------------------------------------------------------- training
# On the other backends only `mlh` and `csq` train here: between them they run
# every layer and loss term (the mixture of experts, the hash layer, the
# center, pairwise, mutual and CSQ terms), and
# test_keras_save_load_gives_identical_codes trains `pairwise`, `csq` and
# `mlh_no_moh` on every backend too. What the other modes add is which terms
# and heads the objective picks, Python that no Keras backend changes.
ONCE = pytest.mark.backend_independent


@pytest.mark.parametrize(
    "mode",
    [
        mode if mode in ("mlh", "csq") else pytest.param(mode, marks=ONCE)
        for mode in sorted(MODES)
    ],
)
def test_two_epochs_on_mnist5k_lower_the_loss_in_every_mode(
    mode, trained_in, small_mnist
):
    model, history = trained_in(mode)
    losses = history["loss"]
    assert losses[1] < losses[0]
    assert np.isfinite(history["val_loss"]).all()
    logged = set(history)
    weights = MODES[mode].weights
    assert ("center_loss" in logged) == bool(weights.center)
    assert ("pairwise_loss" in logged) == bool(weights.pairwise)
    assert ("mutual_loss" in logged) == bool(weights.mutual)
    assert ("csq_loss" in logged) == bool(weights.csq)
    assert {"bit_balance", "quantization_error", "val_bit_balance"} <= logged
    codes = model.encode(small_mnist.x_query[:50])
    assert codes.dtype == np.int8 and codes.shape == (50, 32)
    assert set(np.unique(codes)) <= {-1, 1}


def test_encode_uses_the_chosen_branch(trained, small_mnist):
    x = small_mnist.x_query[:20]
    outputs = trained(x, training=False)
    assert set(outputs) == {"center", "pairwise", "gates"}
    np.testing.assert_array_equal(
        trained.encode(x),
        np.where(keras.ops.convert_to_numpy(outputs["center"]) >= 0, 1, -1),
    )
    np.testing.assert_array_equal(
        trained.encode(x, branch="pairwise"),
        np.where(keras.ops.convert_to_numpy(outputs["pairwise"]) >= 0, 1, -1),
    )
    np.testing.assert_allclose(
        trained.embed(x), keras.ops.convert_to_numpy(outputs["center"]), atol=1e-6
    )


def test_encode_maps_an_exact_zero_to_plus_one(trained, monkeypatch):
    embedding = np.array([[0.0, -0.0, -1e-7, 1e-7, 0.5]], "float32")
    monkeypatch.setattr(trained, "embed", lambda *args, **kwargs: embedding)
    np.testing.assert_array_equal(trained.encode(None), [[1, 1, -1, 1, 1]])


def test_train_step_includes_the_layers_losses(small_mnist):
    # A custom backbone's regularizer (its `losses`) is part of the gradient.
    x, y = small_mnist.x_train[:32], small_mnist.y_train[:32]

    def one_step(l2):
        keras.utils.set_random_seed(0)
        backbone = keras.Sequential(
            [
                keras.layers.Conv2D(4, 3, kernel_regularizer=keras.regularizers.L2(l2)),
                keras.layers.GlobalAveragePooling2D(),
            ]
        )
        model = MLH(num_classes=10, bits=8, backbone=backbone)
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        model.build((None, 28, 28, 1))
        before = backbone.layers[0].kernel.numpy()
        model.fit(x, y, batch_size=32, epochs=1, verbose=0, shuffle=False)
        return before, backbone.layers[0].kernel.numpy()

    start, plain = one_step(0.0)
    start_again, regularized = one_step(100.0)
    np.testing.assert_array_equal(start, start_again)
    assert np.abs(regularized - plain).max() > 1e-3


def test_build_encoder_matches_embed(trained, small_mnist):
    encoder = trained.build_encoder()
    assert encoder.input.shape == (None, 28, 28, 1)
    assert encoder.output_names == ["embedding"] or encoder.outputs[0].shape == (
        None,
        32,
    )
    x = small_mnist.x_query[:10].astype("float32")
    np.testing.assert_allclose(
        encoder.predict(x, verbose=0), trained.embed(x), atol=1e-5
    )


def test_csq_mode_is_one_hash_layer_trained_with_csq_loss(trained_in, small_mnist):
    model, history = trained_in("csq")
    assert model.retrieval_branch == "csq"
    assert model.objective.term_names == ("csq_loss",)
    assert isinstance(model.hash_head, keras_mlh.layers.HashLayer)
    assert model.hash_head.batch_norm
    csq = history["csq_loss"]
    assert csq[-1] < csq[0] and history["loss"] == csq
    x = small_mnist.x_query[:20]
    outputs = model(x, training=False)
    assert set(outputs) == {"csq"}
    np.testing.assert_array_equal(
        model.encode(x),
        np.where(keras.ops.convert_to_numpy(outputs["csq"]) >= 0, 1, -1),
    )


def test_pairwise_mode_retrieves_with_pairwise_branch():
    model = MLH(num_classes=3, bits=8, mode="pairwise")
    assert model.retrieval_branch == "pairwise"
    with pytest.raises(ValueError, match="retrieval_branch"):
        MLH(num_classes=3, bits=8, mode="center", retrieval_branch="pairwise")


def test_multi_label_training_with_multi_hot_labels(small_mnist):
    rng = np.random.default_rng(0)
    multi_hot = (rng.random((len(small_mnist.x_train), 5)) < 0.3).astype("float32")
    model = MLH(num_classes=5, bits=16)
    model.compile()
    history = model.fit(
        small_mnist.x_train, multi_hot, batch_size=64, epochs=2, verbose=0
    )
    assert history.history["loss"][1] < history.history["loss"][0]


# --------------------------------------------------------- saving, callbacks
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"mode": "pairwise"},
        {"mode": "csq"},
        {
            "mode": "mlh_no_moh",
            "augmentation": keras.layers.RandomFlip(),
            "top_k": None,
        },
        {
            "top_k": 2,
            "num_experts": 3,
            "augmentation": [keras.layers.RandomBrightness(0.1)],
        },
        {"center_weight": 3.0, "center_loss_normalization": "sample"},
    ],
)
def test_keras_save_load_gives_identical_codes(kwargs, small_mnist, tmp_path):
    model = MLH(num_classes=10, bits=16, **kwargs)
    model.compile()
    model.fit(small_mnist.x_train[:128], small_mnist.y_train[:128], epochs=1, verbose=0)
    path = str(tmp_path / "mlh.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    assert isinstance(again, MLH)
    # Auto-generated layer names inside the augmentation may differ.
    config, reloaded = model.get_config(), again.get_config()
    assert {k: v for k, v in reloaded.items() if k != "augmentation"} == {
        k: v for k, v in config.items() if k != "augmentation"
    }
    x = small_mnist.x_query
    np.testing.assert_array_equal(again.encode(x), model.encode(x))
    if not kwargs:
        # The reloaded model keeps training (compiled from its saved config,
        # which the other cases compare above; one new compile is enough).
        again.fit(small_mnist.x_train[:64], small_mnist.y_train[:64], verbose=0)


def test_standard_callbacks(small_mnist, tmp_path):
    model = MLH(num_classes=10, bits=16)
    model.compile()
    checkpoint = str(tmp_path / "best.keras")
    # Three batches an epoch: the callbacks' bookkeeping, not the loss, is tested.
    history = model.fit(
        small_mnist.train.take(3),
        validation_data=small_mnist.query,
        epochs=3,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(
                checkpoint, monitor="val_loss", save_best_only=True
            ),
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=1),
            keras.callbacks.BackupAndRestore(str(tmp_path / "backup")),
        ],
    )
    assert len(history.history["loss"]) >= 2
    best = keras.saving.load_model(checkpoint)
    assert best.encode(small_mnist.x_query[:4]).shape == (4, 16)


def test_backup_and_restore_resumes_after_interruption(small_mnist, tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("interrupted")

    backup = str(tmp_path / "backup")
    batches = small_mnist.train.take(2)  # epochs are counted, not learned from
    model = MLH(num_classes=10, bits=16)
    model.compile()
    with pytest.raises(RuntimeError):
        model.fit(
            batches,
            epochs=4,
            verbose=0,
            callbacks=[keras.callbacks.BackupAndRestore(backup), Interrupt()],
        )
    resumed = MLH(num_classes=10, bits=16)
    resumed.compile()
    history = resumed.fit(
        batches,
        epochs=4,
        verbose=0,
        callbacks=[keras.callbacks.BackupAndRestore(backup)],
    )
    assert len(history.history["loss"]) == 2  # epochs 3 and 4 only


# ---------------------------------------------------------------- backbones
def test_custom_functional_backbone(small_mnist, tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    backbone = keras.Model(inputs, x, name="tiny")
    model = MLH(num_classes=10, bits=8, backbone=backbone)
    model.compile()
    model.fit(small_mnist.x_train[:64], small_mnist.y_train[:64], epochs=1, verbose=0)
    path = str(tmp_path / "custom.keras")
    model.save(path)
    again = keras.saving.load_model(path)
    np.testing.assert_array_equal(
        again.encode(small_mnist.x_query[:8]), model.encode(small_mnist.x_query[:8])
    )


# Once, under TensorFlow: what keras_mlh adds to a named backbone (the name
# lookup, weights=None, the Resizing layer, the saved config) is Python; the
# backbone's compile (~60 CPU-s on JAX) is Keras's own MobileNetV3, and the
# backend's train step with batch-norm state runs in every test above.
@ONCE
def test_keras_applications_backbone_offline_with_resizing(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 20, 20, 3)).astype("uint8")
    model = MLH(num_classes=2, bits=8, backbone="mobilenetv3small", image_size=(32, 32))
    model.compile()
    model.fit(images, np.arange(8) % 2, epochs=1, verbose=0)
    assert model.encode(images).shape == (8, 8)
    path = str(tmp_path / "app.keras")
    model.save(path)
    np.testing.assert_array_equal(
        keras.saving.load_model(path).encode(images), model.encode(images)
    )


def test_backbone_errors():
    with pytest.raises(ValueError, match="Unknown backbone"):
        MLH(num_classes=2, bits=8, backbone="vgg1000").build((None, 32, 32, 3))
    with pytest.raises(ValueError, match="3-channel"):
        MLH(num_classes=2, bits=8, backbone="resnet50").build((None, 32, 32, 1))
    no_pool = keras.Sequential([keras.layers.Conv2D(4, 3)])
    with pytest.raises(ValueError, match="global pooling"):
        MLH(num_classes=2, bits=8, backbone=no_pool).build((None, 16, 16, 1))


# ------------------------------------------------------------- augmentation
@keras.saving.register_keras_serializable(package="keras_mlh_tests")
class ZeroInTraining(keras.layers.Layer):
    def call(self, x, training=None):
        return x * 0 if training else x


def test_augmentation_runs_in_training_only(small_mnist):
    model = MLH(num_classes=10, bits=16, augmentation=[ZeroInTraining()])
    x = small_mnist.x_query[:16]
    model(x)
    train_codes = keras.ops.convert_to_numpy(model(x, training=True)["center"])
    # Every augmented image is black, so the training codes are all the same.
    np.testing.assert_allclose(train_codes, train_codes[:1].repeat(16, 0), atol=1e-5)
    infer_codes = keras.ops.convert_to_numpy(model(x, training=False)["center"])
    assert np.abs(infer_codes - infer_codes[:1]).max() > 1e-4


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"bits": 12}, "multiple of 8"),
        ({"bits": 0}, "multiple of 8"),
        ({"mode": "dpsh"}, "Unknown mode"),
        ({"num_classes": 300, "bits": 8}, "only 256 distinct codes"),
        ({"num_classes": 0}, "num_classes"),
        ({"center_weight": -1.0}, "Loss weights"),
        ({"augmentation": "heavy"}, "augmentation"),
        ({"retrieval_branch": "csq"}, "retrieval_branch"),
    ],
)
def test_bad_constructor_arguments(kwargs, match):
    kwargs = {"num_classes": 10, **kwargs}
    with pytest.raises(ValueError, match=match):
        MLH(**kwargs)


def _bad_fit(model, x, y=None, match="", **kwargs):
    model.compile()
    with pytest.raises(ValueError, match=match):
        model.fit(x, y, epochs=1, verbose=0, **kwargs)


def test_fit_rejects_flat_images():
    _bad_fit(MLH(10, 8), np.zeros((8, 784)), np.zeros(8, int), "reshape flat images")


def test_fit_rejects_wrong_channels_after_build(trained, small_mnist):
    rgb = np.zeros((8, 28, 28, 3), "uint8")
    _bad_fit(trained, rgb, np.zeros(8, int), "channels=3")
    with pytest.raises(ValueError, match="channels=3"):
        trained.encode(rgb)


def test_fit_rejects_non_numeric_images():
    _bad_fit(MLH(10, 8), np.full((4, 8, 8, 1), "x"), np.zeros(4, int), "numeric")


def test_fit_rejects_nan_images():
    images = np.zeros((4, 8, 8, 1), "float32")
    images[1, 2, 3] = np.nan
    _bad_fit(MLH(10, 8), images, np.zeros(4, int), "NaN")


def test_fit_rejects_labels_out_of_range():
    _bad_fit(MLH(10, 8), np.zeros((4, 8, 8, 1)), np.array([0, 1, 10, 2]), r"\[0, 10\)")


def test_fit_rejects_labels_of_wrong_shape():
    _bad_fit(MLH(10, 8), np.zeros((4, 8, 8, 1)), np.zeros((4, 7)), "10 columns")
    _bad_fit(MLH(10, 8), np.zeros((4, 8, 8, 1)), np.zeros(3, int), "4 images but 3")


def test_fit_rejects_empty_and_unbatched_datasets():
    import tensorflow as tf

    empty = tf.data.Dataset.from_tensor_slices(
        (np.zeros((0, 8, 8, 1), "uint8"), np.zeros(0, "int64"))
    ).batch(4)
    _bad_fit(MLH(10, 8), empty, match="empty")
    unbatched = tf.data.Dataset.from_tensor_slices(
        (np.zeros((4, 8, 8, 1), "uint8"), np.zeros(4, "int64"))
    )
    _bad_fit(MLH(10, 8), unbatched, match="batch single images first")
    images_only = tf.data.Dataset.from_tensor_slices(np.zeros((4, 8, 8, 1))).batch(2)
    _bad_fit(MLH(10, 8), images_only, match=r"\(images, labels\)")


def test_fit_checks_tf_data_batch_contents():
    import tensorflow as tf

    labels = np.array([0, 1, 99, 2], "int64")
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 8, 8, 1)), labels)).batch(4)
    _bad_fit(MLH(10, 8), ds, match=r"\[0, 10\)")


def test_fit_checks_validation_data():
    x, y = np.zeros((4, 8, 8, 1)), np.zeros(4, int)
    _bad_fit(MLH(10, 8), x, y, r"\[0, 10\)", validation_data=(x, np.full(4, 12)))


def test_evaluate_refuses_the_labels_fit_refuses():
    import tensorflow as tf

    model = MLH(10, 8)
    model.compile()
    x, y = np.zeros((4, 8, 8, 1)), np.array([0, 1, 10, 2])
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.evaluate(x, y, verbose=0)
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        model.evaluate(tf.data.Dataset.from_tensor_slices((x, y)).batch(4), verbose=0)
    with pytest.raises(ValueError, match="10 columns"):
        model.evaluate(x, np.zeros((4, 12)), verbose=0)


def test_center_weight_3_puts_3_on_the_center_term(small_mnist):
    x, y = small_mnist.x_train[:32], small_mnist.y_train[:32]
    keras.utils.set_random_seed(0)
    model = MLH(10, 16, center_weight=3, pairwise_weight=1, mutual_weight=2)
    model.build((None, 28, 28, 1))
    loss, logged, _ = model.compute_objective(x, y, training=False)
    center, pairwise, mutual = (
        float(logged[name]) for name in ("center_loss", "pairwise_loss", "mutual_loss")
    )
    assert min(center, pairwise, mutual) > 0
    expected = 3 * center + 1 * pairwise + 2 * mutual
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(logged["loss"]) == float(loss)


def test_compile_rejects_a_loss():
    with pytest.raises(ValueError, match="computes its own losses"):
        MLH(10, 8).compile(loss="mse")


def test_build_encoder_needs_a_built_model():
    with pytest.raises(ValueError, match="not built"):
        MLH(10, 8).build_encoder()


def test_lazy_top_level_api():
    assert keras_mlh.MLH is MLH
    assert callable(keras_mlh.hash_centers)
    with pytest.raises(AttributeError):
        keras_mlh.does_not_exist  # noqa: B018


MIRRORED_SCRIPT = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras_mlh
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 1)).astype("uint8")
with strategy.scope():
    model = keras_mlh.MLH(num_classes=4, bits=8)
    model.compile()
history = model.fit(x, np.arange(64) % 4, batch_size=16, epochs=2, verbose=0)
assert strategy.num_replicas_in_sync == 2
# 8 global steps, each counted once whatever the number of replicas.
assert int(model.optimizer.iterations.numpy()) == 8, model.optimizer.iterations
assert history.history["loss"][1] < history.history["loss"][0], history.history
print("OK", model.encode(x[:4]).shape)
"""


@pytest.mark.tensorflow_only  # tf.distribute; on another backend it tests nothing
def test_fit_under_mirrored_strategy():
    # Logical devices must be set before TensorFlow starts: a fresh process.
    result = run_python(MIRRORED_SCRIPT, timeout=300)
    assert "OK (4, 8)" in result.stdout


def test_fit_accepts_grayscale_arrays_without_channel_axis(small_mnist):
    x = small_mnist.x_train[:64, ..., 0]  # (n, 28, 28)
    y = small_mnist.y_train[:64]
    model = MLH(num_classes=10, bits=8)
    model.compile()
    history = model.fit(
        x, y, epochs=1, verbose=0, validation_data=(x[:16], y[:16]), batch_size=32
    )
    assert model.image_shape == (28, 28, 1)
    assert np.isfinite(history.history["val_loss"]).all()
    assert model.encode(x[:4]).shape == (4, 8)


def test_numpy_integer_arguments_give_a_json_config():
    import json

    model = MLH(num_classes=np.int64(10), bits=np.int64(16))
    assert type(model.bits) is int and type(model.num_classes) is int
    json.dumps(model.get_config())


def test_custom_small_backbone_survives_saving(small_mnist, tmp_path):
    backbone = keras_mlh.models.SmallConvBackbone(filters=(8, 16), dropout=0.3)
    model = MLH(num_classes=10, bits=8, backbone=backbone)
    model.compile()
    model.fit(small_mnist.x_train[:32], small_mnist.y_train[:32], epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.backbone.get_layer("dropout").rate == 0.3
    assert again.backbone.get_layer("conv1").filters == 16
    x = small_mnist.x_query[:8]
    np.testing.assert_array_equal(again.encode(x), model.encode(x))


def test_caffe_preprocessing_matches_keras_applications(saving_round_trip):
    from keras_mlh.models.backbones import CaffePreprocessing

    pixels = np.random.default_rng(0).uniform(0, 255, (2, 4, 4, 3)).astype("float32")
    expected = keras.applications.resnet50.preprocess_input(pixels.copy())
    actual = np.asarray(CaffePreprocessing()(pixels))
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    saving_round_trip(CaffePreprocessing(), pixels)


def test_named_backbones_get_raw_pixels_and_their_preprocessing():
    from keras_mlh.models.backbones import application_backbone

    assert MLH(num_classes=2, bits=8).input_scale == pytest.approx(1 / 255)
    assert MLH(num_classes=2, bits=8, backbone="resnet50").input_scale == 1.0
    assert (
        MLH(num_classes=2, bits=8, backbone="resnet50", input_scale=0.5).input_scale
        == 0.5
    )
    resnet = application_backbone("resnet50", (32, 32, 3))
    assert resnet.get_layer("caffe_preprocessing") is not None
    assert resnet.output_shape == (None, 2048)


def test_a_saved_model_keeps_its_loss_weights_when_the_defaults_change():
    # A model trained on the former default center weight (1.0) loads with it.
    config = MLH(num_classes=10, bits=16, center_weight=1.0).get_config()
    assert MLH.from_config(config).objective.weights.center == 1.0
    assert MLH(num_classes=10, bits=16).objective.weights == MODES["mlh"].weights


def test_the_documented_default_weights_are_the_modes():
    weights = MODES["mlh"].weights
    documented = (
        f"({weights.center:g}, {weights.pairwise:g}, {weights.mutual:g} for MLH"
    )
    assert documented in " ".join(MLH.__doc__.split())

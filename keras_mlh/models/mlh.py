"""`MLH`, the Mutual Learning for Hashing model, and `load_model`."""

import contextlib

import keras
import numpy as np
from keras import ops

from keras_mlh.centers import hash_centers
from keras_mlh.files import check_model_file
from keras_mlh.layers.hash_layer import HashLayer, MixtureOfHashExperts
from keras_mlh.losses import mlh_objective
from keras_mlh.models import train_steps
from keras_mlh.models.backbones import SmallConvBackbone, application_backbone
from keras_mlh.models.inputs import check_inputs, is_tf_dataset
from keras_mlh.models.modes import MODES as MODES  # re-exported
from keras_mlh.models.modes import get_mode
from keras_mlh_runtime.codes import binarize, validate_bits
from keras_mlh_runtime.errors import check_positive_int, first_line, validate_images


@keras.saving.register_keras_serializable(package="keras_mlh")
class MLH(keras.Model):
    """Mutual Learning for Hashing: two hash branches on one shared backbone.

    A backbone and a mixture of hash experts turn raw images (pixels in
    [0, 255]) into two codes: `u_c`, pulled to hash centers, and `u_p`, trained
    with DPSH's pairwise likelihood, each also taught by the other's detached
    codes (`MLHObjective`). Retrieval codes are `sign(u_c)`; the other
    `MODES` are the baselines.

    Args:
        bits: code length, a positive multiple of 8.
        mode: one of `MODES`.
        backbone: `None` (`SmallConvBackbone`), a name in `APPLICATIONS`, or
            any Keras layer mapping images to a feature vector.
        backbone_weights: a named backbone's weights: `None` or `"imagenet"`.
        num_experts, top_k: the MoH's experts, those each gate keeps (`None`: all).
        center_weight, pairwise_weight, mutual_weight: `None` takes the mode's
            (0.25, 1, 2 for MLH).
        retrieval_branch: one of the mode's branches; `None` picks the first.
        augmentation: `None`, a Keras layer or a list of layers, run in training.
        image_size: optional `(height, width)` the model resizes images to.
        input_scale, input_offset: the backbone gets `pixels * input_scale +
            input_offset`; `None` scale: 1/255, or 1 for a named backbone.
        center_loss_normalization: `"sample_class"` (MDSH's) or `"sample"`
            (the paper's `1/N`).
        batch_norm: batch normalization before the hash tanh.
        center_seed: seed of the hash centers and of CSQ's tie center.

    Example:
    >>> model = keras_mlh.MLH(num_classes=10, bits=32)
    >>> model.compile()
    >>> model.fit(x_train, y_train, epochs=10)  # doctest: +SKIP
    >>> codes = model.encode(x_query)  # int8 in {-1, +1}  # doctest: +SKIP
    """

    def __init__(
        self,
        num_classes,
        bits=32,
        mode="mlh",
        backbone=None,
        backbone_weights=None,
        num_experts=4,
        top_k=None,
        center_weight=None,
        pairwise_weight=None,
        mutual_weight=None,
        retrieval_branch=None,
        augmentation=None,
        image_size=None,
        input_scale=None,
        input_offset=0.0,
        center_loss_normalization="sample_class",
        batch_norm=True,
        center_seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        spec = get_mode(mode)
        self.num_classes = check_positive_int("num_classes", num_classes)
        self.bits = validate_bits(bits)
        self.mode, self.branches, self.uses_moh = mode, spec.branches, spec.uses_moh
        self.retrieval_branch = spec.check_branch(retrieval_branch)
        weights = spec.weights.replace(
            center=center_weight, pairwise=pairwise_weight, mutual=mutual_weight
        )
        self.center_weight, self.mutual_weight = weights.center, weights.mutual
        self.pairwise_weight = weights.pairwise
        self.backbone_weights = backbone_weights
        self.num_experts, self.top_k = num_experts, top_k
        self.image_size = tuple(image_size) if image_size is not None else None
        if input_scale is None:
            input_scale = 1.0 if isinstance(backbone, str) else 1.0 / 255.0
        self.input_scale, self.input_offset = float(input_scale), float(input_offset)
        self.center_loss_normalization = center_loss_normalization
        self.batch_norm = bool(batch_norm)
        self.center_seed = int(center_seed)
        self.image_shape = None
        # `None` or a name: made in build(), from the input shape.
        self._named_backbone = backbone is None or isinstance(backbone, str)
        self._backbone_name = backbone if self._named_backbone else None
        self.backbone = None if self._named_backbone else backbone
        if isinstance(augmentation, (list, tuple)):
            augmentation = keras.Sequential(list(augmentation), name="augmentation")
        if not isinstance(augmentation, (keras.layers.Layer, type(None))):
            raise ValueError(
                "`augmentation` must be None, a Keras layer or a list of layers. "
                f"Received: {augmentation!r}"
            )
        self.augmentation = augmentation
        self.rescaling = keras.layers.Rescaling(
            self.input_scale, self.input_offset, name="rescaling"
        )
        self.resizing = None
        if self.image_size:
            self.resizing = keras.layers.Resizing(*self.image_size, name="resizing")
        head = dict(num_branches=len(self.branches), batch_norm=self.batch_norm)
        if self.uses_moh:
            head.update(num_experts=num_experts, top_k=top_k)
        head_class = MixtureOfHashExperts if self.uses_moh else HashLayer
        self.hash_head = head_class(self.bits, name="hash_head", **head)
        self.centers = hash_centers(self.num_classes, self.bits, seed=center_seed)
        self.objective = mlh_objective.MLHObjective(
            self.centers.centers,
            self.branches,
            weights,
            center_loss_normalization=center_loss_normalization,
            seed=center_seed,
        )
        statistics = ("bit_balance", "quantization_error")
        logged = ("loss", *self.objective.term_names, *statistics)
        self._trackers = {name: keras.metrics.Mean(name=name) for name in logged}

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "MLH expects batches of images (batch, height, width, channels) with "
                f"a known channel count. Received: input_shape={input_shape}"
            )
        self.image_shape = tuple(input_shape[1:])
        size = self.image_size or input_shape[1:3]  # the backbone's, resized
        shape = (input_shape[0], *size, input_shape[-1])
        name, weights = self._backbone_name, self.backbone_weights
        if self.backbone is None and name:
            self.backbone = application_backbone(name, shape[1:], weights=weights)
        elif self.backbone is None:
            self.backbone = SmallConvBackbone(name="backbone")
        if self.augmentation is not None:
            self.augmentation.build(shape)
        if not self.backbone.built:
            self.backbone.build(shape)
        features = self.backbone.compute_output_shape(shape)
        if len(features) != 2:
            raise ValueError(
                "The backbone must output one feature vector per image, shape "
                f"(batch, features); got {features}. Add global pooling to it."
            )
        self.hash_head.build(features)
        self.built = True

    def call(self, images, training=None):
        x = self.rescaling(ops.cast(images, "float32"))
        if self.resizing is not None:
            x = self.resizing(x)
        if training and self.augmentation is not None:
            x = self.augmentation(x, training=True)
        features = self.backbone(x, training=training)
        codes = self.hash_head(features, training=training)
        codes, gates = codes if self.uses_moh else (codes, None)
        outputs = {name: codes[:, i, :] for i, name in enumerate(self.branches)}
        return outputs if gates is None else {**outputs, "gates": gates}

    def compute_objective(self, images, labels, training=False):
        """The forward pass and the MLH loss of one batch, on any backend:
        `(loss to differentiate, logged terms, outputs)`."""
        outputs = self(images, training=training)
        y = mlh_objective.multi_hot(labels, self.num_classes)
        references = None
        if "pairwise_loss" in self.objective.term_names:
            gather = train_steps.gather_replicas
            references = {"codes": gather(outputs["pairwise"]), "labels": gather(y)}
        total, terms = self.objective(outputs, y, references)
        loss = total  # and in training the layers' losses, e.g. regularizers
        if training and self.losses:
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss, {"loss": total, **terms}, outputs

    def update_metrics(self, terms, outputs):
        """Records the terms and the codes' statistics; returns the logs."""
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        u = outputs[self.retrieval_branch]
        self._trackers["bit_balance"].update_state(mlh_objective.bit_balance(u))
        self._trackers["quantization_error"].update_state(
            mlh_objective.quantization_error(u)
        )
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    @property
    def metrics(self):
        return list(self._trackers.values())

    def compile(self, optimizer=None, **kwargs):
        """`keras.Model.compile` with `Adam(1e-3)` by default and no `loss`."""
        if kwargs.get("loss") is not None:
            raise ValueError(
                "MLH computes its own losses (center, pairwise, mutual); set their "
                "weights in the constructor instead of passing `loss` to compile()."
            )
        super().compile(optimizer=optimizer or keras.optimizers.Adam(1e-3), **kwargs)

    def compile_from_config(self, config):
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # One objective (override `compute_objective`), each backend's gradient.
    train_step = train_steps.train_step
    test_step = train_steps.test_step

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit`, with the inputs checked before training starts."""
        x, image_shape = check_inputs(x, y, self.num_classes, self.image_shape)
        # Built now (in the model's strategy, as Keras's fit would), with the
        # optimizer, so that `BackupAndRestore` finds every variable.
        strategy = getattr(self, "distribute_strategy", None)
        with strategy.scope() if strategy else contextlib.nullcontext():
            if not self.built and image_shape is not None:
                self.build((None, *image_shape))
            optimizer = getattr(self, "optimizer", None)  # None before compile()
            if self.built and optimizer is not None and not optimizer.built:
                optimizer.build(self.trainable_variables)
        if is_tf_dataset(x):  # Keras ignores `shuffle` here but warns of its default
            kwargs = {"shuffle": False, **kwargs}
        checked = (self.num_classes, self.image_shape, "validation_data")
        if isinstance(validation_data, tuple):
            images, _ = check_inputs(*validation_data[:2], *checked)
            validation_data = (images, *validation_data[1:])
        elif validation_data is not None:
            check_inputs(validation_data, None, *checked)
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`, with the inputs checked as `fit` does."""
        x, _ = check_inputs(x, y, self.num_classes, self.image_shape)
        return super().evaluate(x, y, *args, **kwargs)

    def embed(self, images, batch_size=256, branch=None):
        """Continuous codes in (-1, 1), float32 `(n, bits)`, of `branch`."""
        branch = branch or self.retrieval_branch
        get_mode(self.mode).check_branch(branch, "branch")
        images = validate_images(images, self.image_shape)
        outputs = self.predict(images, batch_size=batch_size, verbose=0)
        return np.asarray(outputs[branch], dtype=np.float32)

    def encode(self, images, batch_size=256, branch=None):
        """Binary codes, int8 `(n, bits)` in {-1, +1} (0 maps to +1)."""
        return binarize(self.embed(images, batch_size=batch_size, branch=branch))

    def build_encoder(self):
        """The deployable encoder: `images` in, `embedding` out, same weights."""
        if self.image_shape is None:
            raise ValueError(
                "The model is not built yet: fit it, call it on images, or call "
                "model.build((None, height, width, channels)) first."
            )
        inputs = keras.Input(shape=self.image_shape, dtype="float32", name="images")
        embedding = self(inputs, training=False)[self.retrieval_branch]
        embedding = keras.layers.Identity(name="embedding")(embedding)
        return keras.Model(inputs, embedding, name="mlh_encoder")

    def get_config(self):
        serialize = keras.saving.serialize_keras_object  # None stays None
        return {
            **super().get_config(),
            **{name: getattr(self, name) for name in _CONFIG},
            "backbone": self._backbone_name
            if self._named_backbone
            else serialize(self.backbone),
            "backbone_weights": None,  # Weights are saved with the model.
            "augmentation": serialize(self.augmentation),
            "image_size": list(self.image_size) if self.image_size else None,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "augmentation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


# The constructor arguments saved as the attributes of the same name.
_CONFIG = """num_classes bits mode num_experts top_k center_weight pairwise_weight
mutual_weight retrieval_branch input_scale input_offset center_loss_normalization
batch_norm center_seed""".split()


def load_model(path):
    """Loads a `.keras` file (checked first) holding an MLH model, not compiled.

    Example:
    >>> keras_mlh.MLH(num_classes=10, bits=32).save("mlh.keras")
    >>> keras_mlh.models.load_model("mlh.keras").bits
    32
    """
    path = check_model_file(path)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive.
        raise ValueError(
            f"Could not load {path!r} as a Keras model: {first_line(error)}"
        ) from None
    if not isinstance(model, MLH):
        raise ValueError(
            f"{path!r} holds a {type(model).__name__}, not a keras_mlh.MLH model; "
            "only MLH models can be exported as hash encoders."
        )
    return model

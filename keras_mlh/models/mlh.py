import contextlib

import keras
import numpy as np
from keras import ops

from keras_mlh.augmentation import default_augmentation
from keras_mlh.centers import hash_centers
from keras_mlh.datasets.validation import check_labels, validate_images
from keras_mlh.layers.code_memory import CodeMemory
from keras_mlh.layers.hash_layer import HashLayer
from keras_mlh.layers.linear_warmup import MAX_STEPS, LinearWarmup
from keras_mlh.layers.mixture_of_hash_experts import MixtureOfHashExperts
from keras_mlh.losses.mlh_objective import (
    MLHObjective,
    bit_balance,
    multi_hot,
    quantization_error,
)
from keras_mlh.models import train_steps
from keras_mlh.models.backbones import SmallConvBackbone, application_backbone
from keras_mlh.models.modes import MODES as MODES  # re-exported
from keras_mlh.models.modes import get_mode
from keras_mlh_runtime.codes import binarize, validate_bits
from keras_mlh_runtime.errors import check_int_in_range, check_positive_int


def _is_tf_dataset(x):
    import tensorflow as tf

    return isinstance(x, tf.data.Dataset)


@keras.saving.register_keras_serializable(package="keras_mlh")
class MLH(keras.Model):
    """Mutual Learning for Hashing: two hash branches on one shared backbone.

    Raw images go in (pixel values in [0, 255], scaled inside the model), a
    shared backbone extracts features, and a mixture of hash experts (MoH)
    gives two continuous codes: the center branch `u_c`, trained with the
    center loss towards fixed, well-separated hash centers, and the pairwise
    branch `u_p`, trained with the DPSH pairwise likelihood. A cosine mutual
    loss lets each branch learn from the other's detached codes. The training
    loss is `center_weight * L_C + pairwise_weight * L_P + mutual_weight * L_M`.
    Retrieval codes are `sign(u_c)` (the strong branch) by default.

    The modes give the baselines from the same code: `"center"` (CSQ/MDSH-like,
    one hash layer), `"pairwise"` (DPSH-like), `"mlh_no_moh"` (each branch its
    own hash layer) and `"mlh_no_mutual"` (no mutual loss).

    Args:
        num_classes: number of classes (hash centers).
        bits: code length, a positive multiple of 8.
        mode: one of `MODES`.
        backbone: `None` for `SmallConvBackbone`, a `keras.applications` name
            (see `keras_mlh.models.backbones.APPLICATIONS`), or any Keras layer
            or model mapping images to a feature vector.
        backbone_weights: weights of a named backbone: `None` (offline) or
            `"imagenet"` (downloads them once).
        num_experts: number of shared hash experts of the MoH.
        top_k: experts kept by each gate (`None`: dense gating).
        center_weight, pairwise_weight, mutual_weight: loss weights; `None`
            takes the mode's default (0.25, 1, 2 for MLH, tuned on validation
            splits of the MNIST-5k protocols; the paper's 4, 1, 1 is a good
            start with `center_loss_normalization="sample"`).
        mutual_center_share: the share of the mutual loss that teaches the
            center branch (the rest teaches the pairwise branch); `None`
            takes the mode's default, 0.5 (symmetric), see
            `keras_mlh.models.modes.LossWeights`.
        mutual_warmup_steps: when > 0, the mutual loss's weight rises
            linearly from 0 to `mutual_weight` over the first
            `mutual_warmup_steps` training steps (`LinearWarmup`), so that
            each branch finds its own codes before they teach each other.
            0 (the default): the full weight from the first step. The logged
            `loss` is the total with the ramped weight, so it can rise
            during the warm-up: monitor a retrieval metric or the terms.
        retrieval_branch: `"center"` or `"pairwise"`; `None` picks the center
            branch when there is one.
        augmentation: `None`, `"default"` (`default_augmentation()`), a Keras
            layer, or a list of layers; applied in training only.
        image_size: optional `(height, width)` the model resizes images to.
        input_scale, input_offset: images are mapped to
            `pixels * input_scale + input_offset` before the backbone.
            `input_scale=None` picks 1/255 for the default and custom
            backbones, and 1 (raw pixels, which the backbone preprocesses as
            its ImageNet weights expect) for a `keras.applications` name.
        center_loss_normalization: `"sample_class"` (default; MDSH's code,
            averages over classes too) or `"sample"` (the `1/N` of the MLH
            formula, `num_classes` times larger), see `CenterHashLoss`. On
            MNIST-5k at 32 bits, 15 epochs, 3 seeds, with the paper's 4/1/1
            loss weights, `"sample_class"` gave mAP 0.9842 against 0.9814 for
            `"sample"`, with less spread.
        center_quantization_weight: MDSH's `mean((|u| - 1)^2)` weight.
        center_multi_label_target: `"labels"` (default; the MLH/MDSH formula,
            every label a positive class) or `"centroid"` (CSQ: one target,
            the sign of the sum of the labels' centers) for images with
            several labels, see `CenterHashLoss`.
        pairwise_theta_scale: scale of the pairwise inner product (DPSH: 1/2).
        pairwise_quantization_weight: weight of the pairwise quantization term.
        pairwise_memory_size: when > 0, the pairwise loss compares each batch
            with a memory of the last `pairwise_memory_size` training codes
            and labels (DPSH's bank of all training codes, MoCo-style queue),
            not only with the batch. Off by default: a 3,000-code memory
            lowered mAP on the MNIST-5k hold-out (0.9831 / 0.9826 against
            0.9835 / 0.9865 at 16 / 32 bits, `benchmarks/results/tuning.md`).
        batch_norm: batch normalization before the hash tanh.
        gate_balance_weight, expert_diversity_weight: optional MoH
            regularizers, see `MixtureOfHashExperts`.
        center_seed: seed of the hash centers (used when they are searched).
        **kwargs: standard `keras.Model` arguments.

    Example:
    >>> data = keras_mlh.datasets.mnist5k()  # doctest: +SKIP
    >>> model = keras_mlh.MLH(num_classes=10, bits=32)  # doctest: +SKIP
    >>> model.compile(optimizer=keras.optimizers.Adam(1e-3))  # doctest: +SKIP
    >>> model.fit(data.train, epochs=10, validation_data=data.query)  # doctest: +SKIP
    >>> codes = model.encode(data.x_query)  # int8 in {-1, +1}, (1000, 32)  # doctest: +SKIP
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
        mutual_center_share=None,
        mutual_warmup_steps=0,
        retrieval_branch=None,
        augmentation=None,
        image_size=None,
        input_scale=None,
        input_offset=0.0,
        center_loss_normalization="sample_class",
        center_quantization_weight=1e-4,
        center_multi_label_target="labels",
        pairwise_theta_scale=0.5,
        pairwise_quantization_weight=0.1,
        pairwise_memory_size=0,
        batch_norm=True,
        gate_balance_weight=0.0,
        expert_diversity_weight=0.0,
        center_seed=0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        spec = get_mode(mode)
        bits = validate_bits(bits)
        num_classes = check_positive_int("num_classes", num_classes)
        branches = spec.branches
        if retrieval_branch is None:
            retrieval_branch = branches[0]
        if retrieval_branch not in branches:
            raise ValueError(
                f"Mode {mode!r} has branches {branches}; `retrieval_branch` must be "
                f"one of them. Received: retrieval_branch={retrieval_branch!r}"
            )
        weights = spec.weights.replace(
            center_weight, pairwise_weight, mutual_weight, mutual_center_share
        )
        mutual_warmup_steps = check_int_in_range(
            "mutual_warmup_steps", mutual_warmup_steps, 0, MAX_STEPS, " (0: none)"
        )
        if isinstance(pairwise_memory_size, bool) or pairwise_memory_size < 0:
            raise ValueError(
                "`pairwise_memory_size` must be an integer >= 0. "
                f"Received: {pairwise_memory_size!r}"
            )

        self.num_classes = int(num_classes)
        self.bits = bits
        self.mode = mode
        self.branches = branches
        self.uses_moh = spec.uses_moh
        self.loss_weights = weights
        self.center_weight = weights.center
        self.pairwise_weight = weights.pairwise
        self.mutual_weight = weights.mutual
        self.mutual_center_share = weights.mutual_center_share
        self.mutual_warmup_steps = mutual_warmup_steps
        self.retrieval_branch = retrieval_branch
        self.backbone_weights = backbone_weights
        self.num_experts = num_experts
        self.top_k = top_k
        self.image_size = tuple(image_size) if image_size is not None else None
        if input_scale is None:
            input_scale = 1.0 if isinstance(backbone, str) else 1.0 / 255.0
        self.input_scale = float(input_scale)
        self.input_offset = float(input_offset)
        self.center_loss_normalization = center_loss_normalization
        self.center_quantization_weight = float(center_quantization_weight)
        self.center_multi_label_target = center_multi_label_target
        self.pairwise_theta_scale = float(pairwise_theta_scale)
        self.pairwise_quantization_weight = float(pairwise_quantization_weight)
        self.pairwise_memory_size = int(pairwise_memory_size)
        self.batch_norm = bool(batch_norm)
        self.gate_balance_weight = float(gate_balance_weight)
        self.expert_diversity_weight = float(expert_diversity_weight)
        self.center_seed = int(center_seed)
        self.image_shape = None

        # A named backbone needs the input shape, so it is made in build().
        self._backbone_name = backbone if isinstance(backbone, str) else None
        self._default_backbone = backbone is None
        if backbone is None:
            backbone = SmallConvBackbone(name="backbone")
        self.backbone = None if self._backbone_name else backbone

        self._augmentation_spec = (
            augmentation if isinstance(augmentation, str) else None
        )
        if augmentation == "default":
            augmentation = default_augmentation()
        elif isinstance(augmentation, str):
            raise ValueError(
                "`augmentation` must be None, 'default', a Keras layer or a list of "
                f"layers. Received: {augmentation!r}"
            )
        elif isinstance(augmentation, (list, tuple)):
            augmentation = keras.Sequential(list(augmentation), name="augmentation")
        self.augmentation = augmentation

        self.rescaling = keras.layers.Rescaling(
            self.input_scale, self.input_offset, name="rescaling"
        )
        self.resizing = (
            keras.layers.Resizing(*self.image_size, name="resizing")
            if self.image_size
            else None
        )
        if self.uses_moh:
            self.hash_head = MixtureOfHashExperts(
                bits,
                num_experts=num_experts,
                num_branches=len(branches),
                top_k=top_k,
                batch_norm=batch_norm,
                gate_balance_weight=gate_balance_weight,
                expert_diversity_weight=expert_diversity_weight,
                name="hash_head",
            )
        else:
            self.hash_head = HashLayer(
                bits,
                num_branches=len(branches),
                batch_norm=batch_norm,
                name="hash_head",
            )

        centers = hash_centers(num_classes, bits, seed=center_seed)
        self.centers = centers
        self.objective = MLHObjective(
            centers.centers,
            branches,
            weights,
            center_loss_normalization=center_loss_normalization,
            center_quantization_weight=center_quantization_weight,
            center_multi_label_target=center_multi_label_target,
            pairwise_theta_scale=pairwise_theta_scale,
            pairwise_quantization_weight=pairwise_quantization_weight,
        )
        # DPSH's code bank: only a pairwise term reads it.
        self.code_memory = (
            CodeMemory(self.pairwise_memory_size, bits, num_classes, name="code_memory")
            if self.pairwise_memory_size
            and "pairwise_loss" in self.objective.term_names
            else None
        )
        # Only a mutual term has something to warm up.
        self.mutual_warmup = (
            LinearWarmup(self.mutual_warmup_steps, name="mutual_warmup")
            if self.mutual_warmup_steps and "mutual_loss" in self.objective.term_names
            else None
        )
        self._trackers = {
            name: keras.metrics.Mean(name=name)
            for name in (
                "loss",
                *self.objective.term_names,
                "bit_balance",
                "quantization_error",
            )
        }

    # ------------------------------------------------------------------ build
    def build(self, input_shape):
        input_shape = tuple(input_shape)
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(
                "MLH expects batches of images (batch, height, width, channels) with "
                f"a known channel count. Received: input_shape={input_shape}"
            )
        self.image_shape = tuple(input_shape[1:])
        shape = input_shape
        if self.resizing is not None:
            shape = (shape[0], *self.image_size, shape[-1])
        if self._backbone_name:
            self.backbone = application_backbone(
                self._backbone_name, shape[1:], weights=self.backbone_weights
            )
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
        if self.code_memory is not None:
            self.code_memory.build()
        if self.mutual_warmup is not None:
            self.mutual_warmup.build()
        self.built = True

    # ------------------------------------------------------------------- call
    def call(self, images, training=None):
        x = self.rescaling(ops.cast(images, "float32"))
        if self.resizing is not None:
            x = self.resizing(x)
        if training and self.augmentation is not None:
            x = self.augmentation(x, training=True)
        features = self.backbone(x, training=training)
        if self.uses_moh:
            codes, gates = self.hash_head(features, training=training)
        else:
            codes, gates = self.hash_head(features, training=training), None
        outputs = {name: codes[:, i, :] for i, name in enumerate(self.branches)}
        if gates is not None:
            outputs["gates"] = gates
        return outputs

    # ----------------------------------------------------------------- losses
    def compute_objective(self, images, labels, training=False):
        """The forward pass and the MLH loss of one batch, on any backend.

        The pairwise term compares the batch with the whole global batch
        (gathered over `tf.distribute` replicas) and, in training with a code
        memory, with the memory's detached codes; the memory then stores the
        global batch. With `mutual_warmup_steps`, the mutual term's weight is
        scaled by the warm-up's ramp, which a training call advances by one.

        Args:
            images: a batch of raw images.
            labels: class ids `(batch,)` or multi-hot `(batch, num_classes)`.
            training: training mode (augmentation, batch statistics, memory).

        Returns:
            `(loss, terms, outputs)`: the loss to differentiate (the weighted
            total plus the MoH regularizers `self.losses` in training), the
            logged values (`"loss"`, the weighted total, and each active term,
            unweighted) and the model's outputs.
        """
        outputs = self(images, training=training)
        y = multi_hot(labels, self.num_classes)
        references = None
        if "pairwise_loss" in self.objective.term_names:
            u_p = outputs["pairwise"]
            codes, y_all = (
                train_steps.gather_replicas(u_p),
                train_steps.gather_replicas(y),
            )
            references = {
                "codes": codes,
                "labels": y_all,
                "weights": ops.ones((ops.shape(codes)[0],)),
            }
            if training and self.code_memory is not None:
                # The gathered batch: under tf.distribute every replica
                # writes the same global batch and the first one's copy is
                # kept, so the memory holds all replicas' codes.
                memory = self.code_memory(codes, y_all, training=True)
                references = {
                    "codes": ops.concatenate(
                        [codes, ops.stop_gradient(memory["codes"])]
                    ),
                    "labels": ops.concatenate([y_all, memory["labels"]]),
                    "weights": ops.concatenate(
                        [references["weights"], memory["weights"]]
                    ),
                }
        mutual_scale = (
            self.mutual_warmup(training=training)
            if self.mutual_warmup is not None
            else None
        )
        total, terms = self.objective(outputs, y, references, mutual_scale)
        loss = total
        if training and self.losses:
            loss = loss + ops.sum(ops.stack(self.losses))
        return loss, {"loss": total, **terms}, outputs

    def update_metrics(self, terms, outputs):
        """Records the logged values and code statistics; returns the logs.

        Args:
            terms: the logged values of `compute_objective`.
            outputs: the model's outputs.

        Returns:
            A dict of each tracker's running result.
        """
        for name, value in terms.items():
            self._trackers[name].update_state(value)
        u = outputs[self.retrieval_branch]
        self._trackers["bit_balance"].update_state(bit_balance(u))
        self._trackers["quantization_error"].update_state(quantization_error(u))
        return {name: tracker.result() for name, tracker in self._trackers.items()}

    # --------------------------------------------------------------- training
    @property
    def metrics(self):
        return list(self._trackers.values())

    def compile(self, optimizer=None, **kwargs):
        """Configures training. The MLH losses are built in: pass no `loss`.

        Args:
            optimizer: defaults to `keras.optimizers.Adam(1e-3)`.
            **kwargs: other `keras.Model.compile` arguments (`jit_compile`,
                `steps_per_execution`, ...).
        """
        if kwargs.get("loss") is not None:
            raise ValueError(
                "MLH computes its own losses (center, pairwise, mutual); set their "
                "weights in the constructor instead of passing `loss` to compile()."
            )
        if optimizer is None:
            optimizer = keras.optimizers.Adam(1e-3)
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def train_step(self, *args):
        """One mutual-learning step: the design's extension point.

        Runs `compute_objective` in training mode (both branches, the code
        memory, the MoH regularizers), takes the gradient of its loss, applies
        it, and records the metrics. The same backend-agnostic objective runs
        on every backend; `keras_mlh.models.train_steps` wraps it in
        TensorFlow's `GradientTape`, JAX's stateless `train_step(state, data)`
        or PyTorch's autograd. Override `compute_objective` to change the loss.

        Args:
            *args: `(data,)`, or `(state, data)` on JAX.

        Returns:
            The logs (on JAX, `(logs, state)`).
        """
        return train_steps.train_step(self, *args)

    def test_step(self, *args):
        """The evaluation step: `compute_objective` without training."""
        return train_steps.test_step(self, *args)

    def fit(self, x=None, y=None, *args, validation_data=None, **kwargs):
        """`keras.Model.fit`, with the inputs checked before training starts.

        Images and labels (numpy arrays or the first batch of a `tf.data`
        dataset) are validated: shape, channels, dtype, NaN/inf, label range
        and shape, emptiness. A problem raises a `ValueError` that says how to
        fix it. The model and its optimizer are built from the first batch, so
        `keras.callbacks.BackupAndRestore` works on a fresh model.
        """
        # Arrays go on as validated: (n, h, w) grayscale gains its channel axis.
        x, image_shape = self._check_training_data(x, y, "x")
        # Built before training so that callbacks which restore weights
        # (BackupAndRestore) find every variable, optimizer's included; inside
        # the strategy the model was made under, as Keras's own fit does.
        strategy = getattr(self, "distribute_strategy", None)
        with strategy.scope() if strategy else contextlib.nullcontext():
            if not self.built and image_shape is not None:
                self.build((None, *image_shape))
            if self.built and getattr(self, "optimizer", None) is not None:
                if not self.optimizer.built:
                    self.optimizer.build(self.trainable_variables)
        if _is_tf_dataset(x):
            # Keras ignores `shuffle` for datasets but warns about its default.
            kwargs.setdefault("shuffle", False)
        if isinstance(validation_data, tuple):
            images, _ = self._check_training_data(
                *validation_data[:2], "validation_data"
            )
            validation_data = (images, *validation_data[1:])
        elif validation_data is not None:
            self._check_training_data(validation_data, None, "validation_data")
        return super().fit(x, y, *args, validation_data=validation_data, **kwargs)

    def _check_training_data(self, x, y, name):
        """Validates `x`, `y`; returns `(x to train on, image shape or None)`."""
        if _is_tf_dataset(x):
            spec = x.element_spec
            if not isinstance(spec, tuple) or len(spec) < 2:
                raise ValueError(
                    f"`{name}` must yield (images, labels) pairs. "
                    f"Received element_spec={spec}"
                )
            if spec[0].shape.rank == 3:
                raise ValueError(
                    f"`{name}` yields rank-3 images of shape {spec[0].shape}: batch "
                    "single images first, e.g. dataset.batch(64), or give batches "
                    "of grayscale images a channel axis, e.g. "
                    "dataset.map(lambda x, y: (x[..., None], y))."
                )
            first = next(iter(x.take(1)), None)
            if first is None:
                raise ValueError(f"`{name}` is empty: it yields no batch.")
            images, labels = np.asarray(first[0]), np.asarray(first[1])
        elif x is None or y is None:
            return x, None  # Generators and PyDatasets are consumed by fit as is.
        else:
            images, labels = x, y
        images = validate_images(images, self.image_shape, name=f"{name} images")
        check_labels(labels, self.num_classes, len(images), name=f"{name} labels")
        return (x if _is_tf_dataset(x) else images), images.shape[1:]

    # -------------------------------------------------------------- inference
    def embed(self, images, batch_size=256, branch=None):
        """Continuous codes of a branch, in (-1, 1).

        Args:
            images: `(n, height, width, channels)` raw pixels.
            batch_size: inference batch size.
            branch: defaults to `retrieval_branch`.

        Returns:
            float32 numpy array `(n, bits)`.
        """
        branch = branch or self.retrieval_branch
        if branch not in self.branches:
            raise ValueError(f"Mode {self.mode!r} has no {branch!r} branch.")
        images = validate_images(images, self.image_shape)
        outputs = self.predict(images, batch_size=batch_size, verbose=0)
        return np.asarray(outputs[branch], dtype=np.float32)

    def encode(self, images, batch_size=256, branch=None):
        """Binary codes of the retrieval branch.

        Args:
            images: `(n, height, width, channels)` raw pixels.
            batch_size: inference batch size.
            branch: defaults to `retrieval_branch`.

        Returns:
            int8 numpy array `(n, bits)` with values in {-1, +1} (0 maps to +1).
        """
        embedding = self.embed(images, batch_size=batch_size, branch=branch)
        return binarize(embedding)

    def build_encoder(self):
        """The deployable encoder: raw images in, retrieval-branch codes out.

        Returns:
            A functional `keras.Model` sharing this model's weights, with input
            `images` (float32 raw pixels, shape `image_shape`) and output
            `embedding` (float32 `(batch, bits)`, tanh range), inference mode.
        """
        if self.image_shape is None:
            raise ValueError(
                "The model is not built yet: fit it, call it on a batch of images, "
                "or call model.build((None, height, width, channels)) first."
            )
        inputs = keras.Input(shape=self.image_shape, dtype="float32", name="images")
        embedding = self(inputs, training=False)[self.retrieval_branch]
        embedding = keras.layers.Identity(name="embedding")(embedding)
        return keras.Model(inputs, embedding, name="mlh_encoder")

    # -------------------------------------------------------- serialization
    def get_config(self):
        config = super().get_config()
        if self._backbone_name:
            backbone = self._backbone_name
        elif self._default_backbone:
            backbone = None
        else:
            backbone = keras.saving.serialize_keras_object(self.backbone)
        if self._augmentation_spec or self.augmentation is None:
            augmentation = self._augmentation_spec
        else:
            augmentation = keras.saving.serialize_keras_object(self.augmentation)
        config.update(
            {
                "num_classes": self.num_classes,
                "bits": self.bits,
                "mode": self.mode,
                "backbone": backbone,
                "backbone_weights": None,  # Weights are saved with the model.
                "num_experts": self.num_experts,
                "top_k": self.top_k,
                "center_weight": self.center_weight,
                "pairwise_weight": self.pairwise_weight,
                "mutual_weight": self.mutual_weight,
                "mutual_center_share": self.mutual_center_share,
                "mutual_warmup_steps": self.mutual_warmup_steps,
                "retrieval_branch": self.retrieval_branch,
                "augmentation": augmentation,
                "image_size": list(self.image_size) if self.image_size else None,
                "input_scale": self.input_scale,
                "input_offset": self.input_offset,
                "center_loss_normalization": self.center_loss_normalization,
                "center_quantization_weight": self.center_quantization_weight,
                "center_multi_label_target": self.center_multi_label_target,
                "pairwise_theta_scale": self.pairwise_theta_scale,
                "pairwise_quantization_weight": self.pairwise_quantization_weight,
                "pairwise_memory_size": self.pairwise_memory_size,
                "batch_norm": self.batch_norm,
                "gate_balance_weight": self.gate_balance_weight,
                "expert_diversity_weight": self.expert_diversity_weight,
                "center_seed": self.center_seed,
            }
        )
        return config

    def load_own_variables(self, store):
        # MLH has no variables of its own. Files saved before the CodeMemory
        # layer (keras-mlh 0.x with pairwise_memory_size > 0) hold the code
        # memory as four model variables: move them into the layer.
        keys = sorted(store.keys(), key=int)
        if keys == ["0", "1", "2", "3"] and not self._own_variables():
            values = [store[key] for key in keys]
            if self.code_memory is not None:
                self.code_memory.load_legacy_state(*values)
            # Else the mode has no pairwise term: the old memory was never
            # written or read, and there is nothing to keep.
            return
        super().load_own_variables(store)

    def _own_variables(self):
        return self._trainable_variables + self._non_trainable_variables

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for key in ("backbone", "augmentation"):
            if isinstance(config.get(key), dict):
                config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

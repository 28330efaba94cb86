"""MLH's train and test steps, one thin step per backend.

The step itself is backend-agnostic (`MLH.compute_objective`,
`MLH.update_metrics`); this module takes its gradient each backend's way, as
the Keras guides "Customizing what happens in fit()" do: `tf.GradientTape`,
a stateless JAX step over a `keras.StatelessScope`, torch autograd.
"""

import keras

from keras_mlh.backends import check_keras_backend


def gather_replicas(x):
    """`x` concatenated over the replicas of a `tf.distribute` strategy
    (the pairwise loss pairs the batch with the global batch); identity
    elsewhere, and on JAX, whose data-parallel arrays span the global batch."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            return context.all_gather(x, axis=0)
    return x


def train_step(model, *args):
    """One step of `model`: `(data,)`, or `(state, data)` on JAX, as the
    backend's trainer calls it; returns the logs (and JAX's new state)."""
    return _STEPS[check_keras_backend(keras.backend.backend())][0](model, *args)


def test_step(model, *args):
    """The evaluation step: objective and metrics, no gradient, no memory write."""
    return _STEPS[check_keras_backend(keras.backend.backend())][1](model, *args)


def _evaluate(model, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    _, terms, outputs = model.compute_objective(x, y, training=False)
    return model.update_metrics(terms, outputs)


# ---------------------------------------------------------------- TensorFlow
def _tensorflow_train_step(model, data):
    import tensorflow as tf

    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    with tf.GradientTape() as tape:
        loss, terms, outputs = model.compute_objective(x, y, training=True)
        # Keras sums the replicas' gradients: divide for the global mean (the
        # logged values stay per-sample means, whatever the device count).
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        scaled = model.optimizer.scale_loss(loss / replicas)
    variables = model.trainable_variables
    model.optimizer.apply(tape.gradient(scaled, variables), variables)
    return model.update_metrics(terms, outputs)


# ------------------------------------------------------------------------ JAX
def _stateless(variables, values):
    return keras.StatelessScope(
        state_mapping=list(zip(variables, values, strict=True)), collect_losses=True
    )


def _current(scope, variables):
    values = [scope.get_current_value(v) for v in variables]
    return [
        v.value if new is None else new
        for v, new in zip(variables, values, strict=True)
    ]


def _jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metric_values = state
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    tracked = model.non_trainable_variables + model.metrics_variables

    def loss_and_state(trainable_values):
        with _stateless(
            model.trainable_variables + tracked,
            [*trainable_values, *non_trainable, *metric_values],
        ) as scope:
            loss, terms, outputs = model.compute_objective(x, y, training=True)
            logs = model.update_metrics(terms, outputs)
        return loss, (logs, _current(scope, tracked))

    (_, (logs, new_state)), gradients = jax.value_and_grad(
        loss_and_state, has_aux=True
    )(trainable)
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )
    count = len(model.non_trainable_variables)
    return logs, (trainable, new_state[:count], optimizer_values, new_state[count:])


def _jax_test_step(model, state, data):
    trainable, non_trainable, metric_values = state
    tracked = model.non_trainable_variables + model.metrics_variables
    with _stateless(
        model.trainable_variables + tracked,
        [*trainable, *non_trainable, *metric_values],
    ) as scope:
        logs = _evaluate(model, data)
    new_state = _current(scope, tracked)
    count = len(model.non_trainable_variables)
    return logs, (trainable, new_state[:count], new_state[count:])


# -------------------------------------------------------------------- PyTorch
def _torch_train_step(model, data):
    import torch

    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    model.zero_grad()
    loss, terms, outputs = model.compute_objective(x, y, training=True)
    model.optimizer.scale_loss(loss).backward()
    variables = model.trainable_weights[:]
    gradients = [v.value.grad for v in variables]
    with torch.no_grad():
        model.optimizer.apply(gradients, variables)
    return model.update_metrics(terms, outputs)


_STEPS = {
    "tensorflow": (_tensorflow_train_step, _evaluate),
    "jax": (_jax_train_step, _jax_test_step),
    "torch": (_torch_train_step, _evaluate),
}

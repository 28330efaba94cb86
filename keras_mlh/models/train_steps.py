"""MLH's train and test steps: one objective, each backend's gradient.

`MLH.compute_objective` and `MLH.update_metrics` are backend-agnostic; the
gradient is taken as the Keras guides "Customizing what happens in fit()" do:
`tf.GradientTape`, a stateless JAX step in a `keras.StatelessScope`, torch
autograd.
"""

import keras


def gather_replicas(x):
    """`x` concatenated over a `tf.distribute` strategy's replicas (the
    pairwise loss pairs the batch with the global batch); else `x` itself
    (JAX's data-parallel arrays already span the global batch)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            return context.all_gather(x, axis=0)
    return x


def train_step(model, *args):
    """One step: `(data,)`, or `(state, data)` on JAX; returns the logs (and
    JAX's new state)."""
    return _TRAIN_STEPS[keras.backend.backend()](model, *args)


def test_step(model, *args):
    """The evaluation step: objective and metrics, no gradient."""
    if keras.backend.backend() == "jax":
        return _jax_test_step(model, *args)
    return _evaluate(model, args[0])


def _evaluate(model, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    _, terms, outputs = model.compute_objective(x, y, training=False)
    return model.update_metrics(terms, outputs)


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


def _stateless_run(model, function, trainable, non_trainable, metric_values):
    """`function()` with the model's variables set to the given values; returns
    its result and the new non-trainable and metric values."""
    tracked = model.non_trainable_variables + model.metrics_variables
    variables = model.trainable_variables + tracked
    values = [*trainable, *non_trainable, *metric_values]
    with keras.StatelessScope(
        state_mapping=list(zip(variables, values, strict=True)), collect_losses=True
    ) as scope:
        result = function()
    new = [scope.get_current_value(v) for v in tracked]
    new = [v.value if n is None else n for v, n in zip(tracked, new, strict=True)]
    count = len(model.non_trainable_variables)
    return result, new[:count], new[count:]


def _jax_train_step(model, state, data):
    import jax

    trainable, non_trainable, optimizer_values, metric_values = state
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)

    def objective():
        loss, terms, outputs = model.compute_objective(x, y, training=True)
        return loss, model.update_metrics(terms, outputs)

    def loss_and_state(trainable_values):
        (loss, logs), *new = _stateless_run(
            model, objective, trainable_values, non_trainable, metric_values
        )
        return loss, (logs, new)

    (_, (logs, new)), gradients = jax.value_and_grad(loss_and_state, has_aux=True)(
        trainable
    )
    trainable, optimizer_values = model.optimizer.stateless_apply(
        optimizer_values, gradients, trainable
    )
    return logs, (trainable, new[0], optimizer_values, new[1])


def _jax_test_step(model, state, data):
    trainable, non_trainable, metric_values = state
    logs, *new = _stateless_run(
        model, lambda: _evaluate(model, data), trainable, non_trainable, metric_values
    )
    return logs, (trainable, *new)


_TRAIN_STEPS = {
    "tensorflow": _tensorflow_train_step,
    "jax": _jax_train_step,
    "torch": _torch_train_step,
}

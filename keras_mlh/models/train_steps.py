"""MLH's train and test steps: one objective, each backend's gradient, as in
the Keras guides "Customizing what happens in fit()"."""

import keras


def gather_replicas(x):
    """`x` over all `tf.distribute` replicas, for the pairwise loss's global
    batch (JAX's data-parallel arrays already span it)."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            return context.all_gather(x, axis=0)
    return x


def train_step(model, *args):
    """One step on `(data,)`, or JAX's `(state, data)`: the logs (, new state)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return _jax_train_step(model, *args)
    x, y, _ = keras.utils.unpack_x_y_sample_weight(args[0])
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss, terms, outputs = model.compute_objective(x, y, training=True)
            # Keras sums the replicas' gradients: divide for the global mean
            # (the logged values stay per-sample means, whatever the devices).
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            scaled = model.optimizer.scale_loss(loss / replicas)
        variables = model.trainable_variables
        model.optimizer.apply(tape.gradient(scaled, variables), variables)
    else:
        import torch

        model.zero_grad()
        loss, terms, outputs = model.compute_objective(x, y, training=True)
        model.optimizer.scale_loss(loss).backward()
        variables = model.trainable_weights[:]
        with torch.no_grad():
            model.optimizer.apply([v.value.grad for v in variables], variables)
    return model.update_metrics(terms, outputs)


def test_step(model, *args):
    """The evaluation step: objective and metrics, no gradient."""
    if keras.backend.backend() == "jax":
        (trainable, *state), data = args  # state: non-trainable, metric values
        logs, *new = _stateless_run(
            model, lambda: _evaluate(model, data), trainable, *state
        )
        return logs, (trainable, *new)
    return _evaluate(model, args[0])


def _evaluate(model, data):
    x, y, _ = keras.utils.unpack_x_y_sample_weight(data)
    _, terms, outputs = model.compute_objective(x, y, training=False)
    return model.update_metrics(terms, outputs)


def _stateless_run(model, function, trainable, non_trainable, metric_values):
    """`function()`'s result on the given variable values, and the new
    non-trainable and metric values."""
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

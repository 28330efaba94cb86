"""Distributed training: logged values independent of the device count."""

import pytest
from helpers import run_python

# Logical devices must be set before TensorFlow starts: a fresh process, two
# logical CPUs and a batch of sorted labels. Each replica's half of the batch
# holds two of the four classes, so pairs taken inside a replica would see far
# more similar pairs.
TWO_CPUS_AND_A_BATCH = """
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, keras_mlh
y = np.repeat(np.arange(4), 8)
noise = np.random.default_rng(0).integers(0, 60, (32, 16, 16, 1))
x = (noise + 60 * y[:, None, None, None]).astype("uint8")
"""
MIRRORED_AGREEMENT = (
    TWO_CPUS_AND_A_BATCH
    + """

def make():
    keras.utils.set_random_seed(0)
    model = keras_mlh.MLH(num_classes=4, bits=8)
    model.compile()
    model.build((None, 16, 16, 1))
    return model

single = make()
# Trained a little, so that the codes are far from 0 and the pairs matter.
single.fit(x, y, batch_size=8, epochs=3, verbose=0)
weights = single.get_weights()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = make()
mirrored.set_weights(weights)
one = single.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
two = mirrored.evaluate(x, y, batch_size=32, verbose=0, return_dict=True)
for name in ("loss", "center_loss", "pairwise_loss", "mutual_loss"):
    print(name, one[name], two[name], two[name] / one[name])
"""
)


@pytest.mark.tensorflow_only
def test_logged_losses_do_not_depend_on_the_replica_count():
    result = run_python(MIRRORED_AGREEMENT, timeout=300)
    rows = [line.split() for line in result.stdout.splitlines()]
    ratios = {name: float(ratio) for name, _, _, ratio in rows}
    assert set(ratios) == {"loss", "center_loss", "pairwise_loss", "mutual_loss"}
    # The pairwise term too: it takes its pairs over the gathered global batch.
    for name, ratio in ratios.items():
        assert ratio == pytest.approx(1.0, abs=1e-4), (name, result.stdout)


# One SGD step (Adam's first step is about lr * sign(g), blind to the
# gradient's scale) of a model without batch normalization (Keras normalizes
# each replica's slice by its own statistics): with the gradient loss scaled
# and the pairwise codes gathered right, 1 and 2 replicas take the same step.
MIRRORED_STEP = (
    TWO_CPUS_AND_A_BATCH
    + """

def make():
    keras.utils.set_random_seed(0)
    backbone = keras.Sequential([
        keras.layers.Conv2D(8, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(16, activation="relu"),
    ])
    model = keras_mlh.MLH(num_classes=4, bits=8, backbone=backbone,
                          batch_norm=False)
    model.compile(optimizer=keras.optimizers.SGD(0.5))
    model.build((None, 16, 16, 1))
    return model

single = make()
start = single.get_weights()
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
with strategy.scope():
    mirrored = make()
mirrored.set_weights(start)
start = [w.numpy() for w in single.trainable_weights]
for model in (single, mirrored):
    model.fit(x, y, batch_size=32, epochs=1, shuffle=False, verbose=0)
moved = max(float(np.abs(a - b.numpy()).max())
            for a, b in zip(start, single.trainable_weights))
diff = max(float(np.abs(a.numpy() - b.numpy()).max())
           for a, b in zip(single.trainable_weights, mirrored.trainable_weights))
print("moved", moved)
print("weights", diff)
"""
)


@pytest.mark.tensorflow_only
def test_one_mirrored_step_gives_the_weights_of_one_device():
    result = run_python(MIRRORED_STEP, timeout=300)
    values = dict(line.split() for line in result.stdout.splitlines())
    values = {name: float(value) for name, value in values.items()}
    assert values["moved"] > 1e-3, result.stdout  # the step did something
    # float32 sums in another order: a few 1e-6 here.
    assert values["weights"] < 1e-4, result.stdout

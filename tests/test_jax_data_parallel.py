"""Multi-process data-parallel MLH training on JAX (`keras.distribution`).

Two worker processes on 127.0.0.1 (gloo CPU collectives) stand in for two
machines: `jax.distributed.initialize`, `DataParallel` over both processes'
devices, the same seeded `tf.data` input. Each worker is bounded (an alarm
and a subprocess timeout) and exits by itself.
"""

import json
import os
import socket
import subprocess
import sys

import pytest

pytestmark = pytest.mark.jax_only  # keras.distribution multi-process

WORKER = """
import os, signal, sys
signal.alarm(420)  # self-terminating, whatever happens to the other worker
port, process_id = int(sys.argv[1]), int(sys.argv[2])
import jax
jax.config.update("jax_cpu_collectives_implementation", "gloo")
jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{port}", num_processes=2,
    process_id=process_id, initialization_timeout=120)
import json, keras, numpy as np, tensorflow as tf
import keras_mlh.models
keras.distribution.set_distribution(
    keras.distribution.DataParallel(devices=jax.devices()))
keras.utils.set_random_seed(0)
y = np.arange(64) % 4
noise = np.random.default_rng(0).integers(0, 60, (64, 16, 16, 1))
x = (noise + 60 * y[:, None, None, None]).astype("uint8")
# Numpy input is refused under multi-process auto-sharding: tf.data.
# Repeated, with a fixed step count: both processes run the same steps.
data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16).repeat()
model = keras_mlh.models.MLH(num_classes=4, bits=8)
model.compile()
history = model.fit(data, epochs=3, steps_per_epoch=4, verbose=0)
weights = [np.asarray(v.value.addressable_shards[0].data) for v in model.weights]
print("RESULT", json.dumps({
    "devices": len(jax.devices()),
    "loss": [float(v) for v in history.history["loss"]],
    "weights": [w.ravel().tolist() for w in weights],
}))
"""


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_train_to_identical_weights_and_lower_the_loss(tmp_path):
    port = _free_port()
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "2"}
    # Output to files, not pipes: a worker blocked on a full pipe would stall
    # the other one inside a collective.
    logs = [open(tmp_path / f"worker{i}.log", "w+") for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(port), str(i)],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for i, log in enumerate(logs)
    ]
    results = []
    try:
        for worker, log in zip(workers, logs, strict=True):
            worker.wait(timeout=480)
            log.seek(0)
            out = log.read()
            assert worker.returncode == 0, out[-3000:]
            line = next(x for x in out.splitlines() if x.startswith("RESULT "))
            results.append(json.loads(line[len("RESULT ") :]))
    finally:
        for worker, log in zip(workers, logs, strict=True):
            if worker.poll() is None:
                worker.kill()
                worker.wait()
            log.close()
    first, second = results
    print("two-process losses per epoch:", first["loss"], second["loss"])
    assert first["devices"] == second["devices"] == 2
    assert first["weights"] == second["weights"]
    assert first["loss"] == second["loss"]
    assert first["loss"][-1] < first["loss"][0], first["loss"]

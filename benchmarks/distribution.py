"""MirroredStrategy over 2 logical CPUs against 1 device (run by hand).

On the offline MNIST-5k training images (batches of 64), with the same
initial weights: the logged losses of `evaluate` (each term, 1 vs 2
replicas), the logged training loss of the same steps from the same weights,
and steps/s (alternating chunks of training, one per strategy per round, the
median interval between batch ends). Two logical CPUs share the machine's
cores: this measures the cost of the replication, not a speed-up. Writes
`benchmarks/results/distribution.{md,json}`.

    python benchmarks/distribution.py              # 6 rounds of 10 steps
    python benchmarks/distribution.py --rounds 2 --steps 5
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from _common import RESULTS, write
from backends import _without_out

HERE = os.path.dirname(os.path.abspath(__file__))
TERMS = ("loss", "center_loss", "pairwise_loss", "mutual_loss")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def worker(args):
    # Logical devices must be set before TensorFlow starts: this process.
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2
    )
    import keras
    from _common import machine
    from backends import BatchEnds

    import keras_mlh

    data = keras_mlh.datasets.mnist5k()
    strategies = {
        1: tf.distribute.get_strategy(),
        2: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
    }
    models = {}
    for replicas, strategy in strategies.items():
        with strategy.scope():
            keras.utils.set_random_seed(0)
            models[replicas] = keras_mlh.MLH(num_classes=10, bits=args.bits)
            models[replicas].compile()
            models[replicas].build((None, *data.x_train.shape[1:]))
    models[2].set_weights(models[1].get_weights())
    batch = data.x_train[: 64 * args.steps], data.y_train[: 64 * args.steps]
    logged = {
        r: m.evaluate(*batch, batch_size=64, verbose=0, return_dict=True)
        for r, m in models.items()
    }
    history = {
        r: m.fit(*batch, batch_size=64, epochs=1, shuffle=False, verbose=0)
        for r, m in models.items()
    }
    chunks = {1: [], 2: []}
    for i in range(args.rounds):
        for replicas in (1, 2) if i % 2 == 0 else (2, 1):
            timer = BatchEnds()
            models[replicas].fit(
                data.train.take(args.steps),
                epochs=1,
                verbose=0,
                callbacks=[timer.callback],
            )
            chunks[replicas].append(timer.median_ms())
    report = {
        "machine": machine(),
        "evaluate": {
            str(r): {t: float(v[t]) for t in TERMS} for r, v in logged.items()
        },
        "train_loss": {str(r): float(h.history["loss"][0]) for r, h in history.items()},
        "chunks_ms": {str(r): c for r, c in chunks.items()},
    }
    print("REPORT " + json.dumps(report))
    return 0


def markdown(report, args, command):
    one, two = report["evaluate"]["1"], report["evaluate"]["2"]
    steps = {r: 1000 / float(np.median(c)) for r, c in report["chunks_ms"].items()}
    train = report["train_loss"]
    lines = [
        "# MirroredStrategy: 2 logical CPUs against 1 device",
        "",
        "MNIST-5k training images, batches of 64, MLH 32 bits, the same initial "
        f"weights. Steps/s: {args.rounds} rounds of {args.steps}-step chunks "
        "alternating between the two models, median interval between batch "
        "ends. The two logical CPUs share one 2-core machine (shared with other "
        "engineers' test runs, noisy): replication cost, not a speed-up.",
        "",
        "| replicas | steps/s | evaluate loss | center | pairwise | mutual | "
        f"train loss ({args.steps} steps) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r, logged in (("1", one), ("2", two)):
        lines.append(
            f"| {r} | {steps[r]:.2f} | "
            + " | ".join(f"{logged[t]:.5f}" for t in TERMS)
            + f" | {train[r]:.5f} |"
        )
    ratios = {t: two[t] / one[t] for t in TERMS}
    lines += [
        "",
        "Logged evaluate values, 2 / 1 replicas: "
        + ", ".join(f"{t} {v:.6f}" for t, v in ratios.items())
        + f". Training loss of the same steps, 2 / 1: "
        f"{train['2'] / train['1']:.4f} (batch normalization uses each "
        "replica's own slice statistics in training, so the trained weights "
        "part slowly). Steps/s, 2 / 1 replicas: "
        f"{steps['2'] / steps['1']:.2f}.",
        "",
        f"- {report['machine']}",
        "",
        f"Command: `{command}`",
        "",
    ]
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    command = [sys.executable, os.path.abspath(__file__), "--worker"]
    command += ["--rounds", str(args.rounds), "--steps", str(args.steps)]
    command += ["--bits", str(args.bits)]
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "2"}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        return 1
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT "))
    report = json.loads(line[len("REPORT ") :])
    text = _without_out(
        f"python benchmarks/distribution.py {' '.join(argv or sys.argv[1:])}"
    )
    write("distribution", markdown(report, args, text.strip()), report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Backend benchmark on the offline MNIST-5k split (run by hand).

Two parts, each backend in its own process and environment
(`scripts/test.sh` makes `.venv`, `.venv-jax`, `.venv-torch`):

- **Step time** of `mlh`, `center` and `keras`, a plain `keras.Sequential`
  of the same network (rescaling, `SmallConvBackbone`, Dense -> BatchNorm ->
  tanh hash layer) fitted with `loss="mse"` to each label's hash center, with
  the same optimizer and schedule on the same batches: the floor of what the
  package can cost. The three models are built and compiled in one process,
  compiled/traced by a warm-up, then trained in chunks of `--timing-steps`
  batches, one chunk each per round, the order rotating from round to round,
  `--timing-rounds` rounds. A chunk's step time is the median interval
  between its batch ends (the loss read back each step); a ratio (mlh /
  center, mlh / keras, center / keras) is the median over rounds of the two
  chunks' ratio. Load changes on the shared machine hit the models within
  seconds of each other, which separate whole-fit runs do not guarantee.
- **mAP@all** of the 1,000 queries against the 4,000 database images after
  the default recipe (`keras_mlh.training.default_training`, 15 epochs), per
  seed; runs under `nice -n 15` (not a timing).

Writes `benchmarks/results/backends{,_quick}.{md,json}`.

    python benchmarks/backends.py                # 32 bits, 3 seeds, 15 epochs
    python benchmarks/backends.py --quick        # 1 seed, 2 epochs, short timing
    python benchmarks/backends.py --parts timing # step times only
    python benchmarks/backends.py --backends tensorflow jax --map-modes mlh
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time

import numpy as np
from _common import RESULTS, machine, write

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHONS = {
    "tensorflow": os.path.join(ROOT, ".venv", "bin", "python"),
    "jax": os.path.join(ROOT, ".venv-jax", "bin", "python"),
    "torch": os.path.join(ROOT, ".venv-torch", "bin", "python"),
}
MODES = ("mlh", "center")
# Step-time models: the MLH modes and the plain Keras floor.
TIMED = (*MODES, "keras")
# (numerator, denominator) of the reported step-time ratios.
RATIOS = (("mlh", "keras"), ("center", "keras"), ("mlh", "center"))
PARTS = ("timing", "map")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(PYTHONS))
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--map-modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--timing-rounds", type=int, default=8)
    parser.add_argument("--timing-steps", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument(
        "--combine",
        nargs="+",
        metavar="JSON",
        help="write the table from these results files (e.g. a timing run and "
        "a mAP run made at the same time) instead of running",
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds[:1]
        args.epochs = args.epochs or 2
        args.timing_rounds = min(args.timing_rounds, 3)
    return args


class BatchEnds:
    """End time of every batch, after its loss is on the host.

    Reading the loss syncs the asynchronous backends (JAX, TensorFlow), so the
    intervals between batch ends are step times, not dispatch times; the one
    sync per step costs both models alike.
    """

    def __init__(self):
        import keras

        class Callback(keras.callbacks.Callback):
            def on_train_batch_end(inner, batch, logs=None):
                float(keras.ops.convert_to_numpy(logs["loss"]))
                self.ends.append(time.perf_counter())

        self.ends = []
        self.callback = Callback()

    def median_ms(self):
        return 1000 * float(np.median(np.diff(self.ends)))


def ratio_of_rounds(chunks, num="mlh", den="center"):
    """Median, min and max over rounds of the `num` / `den` chunk ratio.

    Each round's chunks ran seconds apart, so a load spike on the shared
    machine moves one round's ratio, not the median.
    """
    ratios = np.array(chunks[num]) / np.array(chunks[den])
    return float(np.median(ratios)), float(ratios.min()), float(ratios.max())


def plain_keras(data, bits):
    """The `keras` floor: MLH's `center` network and optimizer, no package code
    in the step (Keras's own `train_step`, `loss="mse"` to the hash centers).

    Returns:
        `(model, dataset)`: the compiled model and `data.train` with each
        label replaced by its class's hash center.
    """
    import keras
    import tensorflow as tf

    from keras_mlh.centers import hash_centers
    from keras_mlh.models.backbones import SmallConvBackbone
    from keras_mlh.training import default_training

    model = keras.Sequential(
        [
            keras.Input(data.x_train.shape[1:]),
            keras.layers.Rescaling(1.0 / 255.0),
            SmallConvBackbone(),
            keras.layers.Dense(bits),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.Activation("tanh"),
        ]
    )
    recipe = default_training(steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer, loss="mse")
    centers = tf.constant(hash_centers(data.num_classes, bits).centers, "float32")
    dataset = data.train.map(lambda x, y: (x, tf.gather(centers, y)))
    return model, dataset


def step_times(data, bits, rounds, steps):
    """Rotating chunks of `mlh`, `center` and `keras` training, see the docstring."""
    import keras

    from keras_mlh import MLH
    from keras_mlh.training import default_training

    models, datasets = {}, {}
    for name in TIMED:
        keras.utils.set_random_seed(0)
        if name == "keras":
            models[name], datasets[name] = plain_keras(data, bits)
        else:
            models[name] = MLH(num_classes=data.num_classes, bits=bits, mode=name)
            recipe = default_training(steps_per_epoch=len(data.train))
            models[name].compile(optimizer=recipe.optimizer)
            datasets[name] = data.train
        # Warm-up: traces/compiles the step, the partial last batch included.
        models[name].fit(datasets[name].take(steps), epochs=1, verbose=0)
    chunks = {name: [] for name in TIMED}
    for r in range(rounds):
        for name in TIMED[r % len(TIMED) :] + TIMED[: r % len(TIMED)]:
            timer = BatchEnds()
            models[name].fit(
                datasets[name].take(steps),
                epochs=1,
                verbose=0,
                callbacks=[timer.callback],
            )
            chunks[name].append(timer.median_ms())
    ratios = {f"{a}/{b}": ratio_of_rounds(chunks, a, b) for a, b in RATIOS}
    return {
        "backend": keras.backend.backend(),
        "chunks_ms": chunks,
        "step_ms": {m: float(np.median(c)) for m, c in chunks.items()},
        "ratios": {
            k: {"median": v[0], "range": list(v[1:])} for k, v in ratios.items()
        },
        "rounds": rounds,
        "steps_per_chunk": steps,
    }


def worker(args):
    """Runs in the backend's own process (KERAS_BACKEND set by main)."""
    sys.path.insert(0, HERE)
    import ablation
    import keras

    data = ablation.load_data(holdout=False)
    report = {"machine": machine()}
    if args.worker == "timing":
        report["timing"] = step_times(
            data, args.bits, args.timing_rounds, args.timing_steps
        )
    else:
        report["runs"] = []
        for seed in args.seeds:
            for mode in args.map_modes:
                run = ablation.run_one(data, mode, args.bits, seed, args.epochs or 15)
                report["runs"].append({**run, "backend": keras.backend.backend()})
                print(json.dumps(report["runs"][-1]), file=sys.stderr, flush=True)
    print("REPORT " + json.dumps(report))
    return 0


def summarize(runs, backends, timing=None):
    """The markdown table and its data: step times (timing) and mAP (runs)."""
    timing = timing or {}
    lines = [
        "| backend | keras step (ms) | mlh step (ms) | center step (ms) | "
        "mlh / keras (range) | center / keras (range) | mlh / center (range) | "
        "mlh mAP | center mAP |",
        "|" + "---|" * 9,
    ]
    table = {}
    for backend in backends:
        rows = {
            m: [r for r in runs if r["backend"] == backend and r["mode"] == m]
            for m in MODES
        }
        times = timing.get(backend)
        if not times and not any(rows.values()):
            continue
        maps = {m: [r["map"] for r in rows[m]] for m in MODES if rows[m]}
        table[backend] = {"map": maps}
        cells = ["—"] * 6
        if times:
            step = times["step_ms"]
            ratios = times["ratios"]
            table[backend].update(
                step_ms=step, ratios={k: v["median"] for k, v in ratios.items()}
            )
            cells = [f"{step[m]:.1f}" if m in step else "—" for m in ("keras", *MODES)]
            for a, b in RATIOS:
                r = ratios.get(f"{a}/{b}")
                cells.append(
                    "—"
                    if r is None
                    else "{:.2f} ({:.2f}–{:.2f})".format(r["median"], *r["range"])
                )
        for m in MODES:
            cells.append(
                f"{np.mean(maps[m]):.4f} ± {np.std(maps[m]):.4f} (n={len(maps[m])})"
                if m in maps
                else "—"
            )
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    mlh = [np.mean(v["map"]["mlh"]) for v in table.values() if "mlh" in v["map"]]
    spread = float(max(mlh) - min(mlh)) if len(mlh) > 1 else None
    return lines, table, spread


def _without_out(command):
    """The command as a reader reruns it: `--out` only moved the files."""
    return re.sub(r" --out \S+", "", command).strip()


def run_worker(backend, part, args):
    command = [PYTHONS[backend], os.path.abspath(__file__), "--worker", part]
    command += ["--bits", str(args.bits), "--seeds", *map(str, args.seeds)]
    command += ["--map-modes", *args.map_modes]
    command += ["--timing-rounds", str(args.timing_rounds)]
    command += ["--timing-steps", str(args.timing_steps)]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # mAP is not a timing: others' tests go first.
    nice = (lambda: os.nice(15)) if part == "map" else None
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, preexec_fn=nice
    )
    if result.returncode != 0:
        print(result.stderr[-3000:], file=sys.stderr)
        raise SystemExit(1)
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT "))
    return json.loads(line[len("REPORT ") :])


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    backends = [b for b in args.backends if os.path.exists(PYTHONS[b])]
    for b in set(args.backends) - set(backends):
        print(f"skipping {b}: {PYTHONS[b]} missing (run scripts/test.sh)")
    runs, timing, machines, commands = [], {}, {}, []
    for path in args.combine or []:
        with open(path) as f:
            report = json.load(f)
        runs += report["runs"]
        timing.update(report["timing"])
        machines.update(report["machines"])
        commands.append(_without_out(report["command"]))
    for part in (
        () if args.combine else ("timing", "map")
    ):  # timings first, on the least-loaded cores
        if part not in args.parts:
            continue
        for backend in backends:
            report = run_worker(backend, part, args)
            machines[backend] = report["machine"]
            if part == "timing":
                timing[backend] = report["timing"]
            else:
                runs += report["runs"]
    lines, table, spread = summarize(runs, backends, timing)
    # From the runs themselves, so that --combine describes what it read.
    epochs = sorted({r["epochs"] for r in runs}) or [args.epochs or 15]
    seeds = sorted({r["seed"] for r in runs}) or args.seeds
    chunking = {(t["rounds"], t["steps_per_chunk"]) for t in timing.values()}
    rounds, steps = min(chunking) if chunking else (0, 0)
    command = " and ".join(
        commands
        or [
            _without_out(
                f"python benchmarks/backends.py {' '.join(argv or sys.argv[1:])}"
            )
        ]
    )
    markdown = "\n".join(
        [
            f"# Backends: MNIST-5k, {args.bits} bits",
            "",
            f"Step time: median interval between batch ends (loss read back), "
            f"{rounds} rounds of {steps}-step "
            "chunks of mlh, center and keras in rotating order, in one process "
            "per backend; keras is a plain `keras.Sequential` of the same "
            "network (SmallConvBackbone, Dense -> BatchNorm -> tanh) fitted "
            "with MSE to the hash centers, same optimizer and schedule, same "
            "batches: the floor of what the package can cost. A ratio is the "
            "median of the rounds' ratios (range in brackets). "
            "Backends ran one after the other on a shared, noisy 2-core machine "
            "(other engineers' tests alongside): compare ratios, not step "
            "times across backends.",
            "",
            (
                f"mAP@all of the 1,000 queries after the default recipe, "
                f"{'/'.join(map(str, epochs))} epochs, seeds {seeds} "
                "(mean ± std, n runs), under nice -n 15."
                + (
                    f" Spread of the mlh mean across backends: {spread:.4f}."
                    if spread is not None
                    else ""
                )
                if runs
                else "mAP: no runs in these results (`--parts map` adds them)."
            ),
            "",
            *lines,
            "",
            *[f"- {b}: {m}" for b, m in machines.items()],
            "",
            f"Command: `{command}`" if not commands else f"Combined runs: `{command}`",
            "",
        ]
    )
    name = "backends_quick" if args.quick else "backends"
    data = {
        "runs": runs,
        "timing": timing,
        "summary": table,
        "map_spread_mlh": spread,
        "machines": machines,
        "command": command,
    }
    write(name, markdown, data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Backend benchmark on the offline MNIST-5k split (run by hand).

Trains `mlh` and `center` with the default recipe on TensorFlow, JAX and
PyTorch, and reports per backend the median train-step time (epochs after
the first, so tracing/compilation is excluded), the step-time ratio
mlh / center (measured side by side in the same process), and mAP@all of the
1,000 queries against the 4,000 database images. Each backend runs in its
own process and environment (`scripts/test.sh` makes `.venv`, `.venv-jax`,
`.venv-torch`). Writes `benchmarks/results/backends{,_quick}.{md,json}`.

    python benchmarks/backends.py                # 32 bits, 3 seeds, 15 epochs
    python benchmarks/backends.py --quick        # 1 seed, 2 epochs
    python benchmarks/backends.py --backends tensorflow jax
"""

import argparse
import json
import os
import subprocess
import sys

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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=list(PYTHONS))
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--quick", action="store_true", help="1 seed, 2 epochs")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds = args.seeds[:1]
        args.epochs = args.epochs or 2
    return args


def worker(args):
    """Runs in the backend's own process (KERAS_BACKEND set by main)."""
    sys.path.insert(0, HERE)
    import ablation
    import keras

    data = ablation.load_data(holdout=False)
    runs = []
    for seed in args.seeds:
        for mode in MODES:  # interleaved: load changes hit both modes alike
            run = ablation.run_one(data, mode, args.bits, seed, args.epochs or 15)
            runs.append({**run, "backend": keras.backend.backend()})
            print(json.dumps(runs[-1]), file=sys.stderr, flush=True)
    print("RUNS " + json.dumps({"machine": machine(), "runs": runs}))
    return 0


def summarize(runs, backends):
    lines = [
        "| backend | mlh step (ms) | center step (ms) | mlh / center | "
        "mlh mAP | center mAP |",
        "|---|---|---|---|---|---|",
    ]
    table = {}
    for backend in backends:
        rows = {
            m: [r for r in runs if r["backend"] == backend and r["mode"] == m]
            for m in MODES
        }
        if not all(rows.values()):
            continue
        step = {m: float(np.median([r["step_ms"] for r in rows[m]])) for m in MODES}
        maps = {m: [r["map"] for r in rows[m]] for m in MODES}
        table[backend] = {"step_ms": step, "map": maps}
        lines.append(
            f"| {backend} | {step['mlh']:.1f} | {step['center']:.1f} | "
            f"{step['mlh'] / step['center']:.2f} | "
            f"{np.mean(maps['mlh']):.4f} ± {np.std(maps['mlh']):.4f} | "
            f"{np.mean(maps['center']):.4f} ± {np.std(maps['center']):.4f} |"
        )
    return lines, table


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker(args)
    runs, machines = [], {}
    for backend in args.backends:
        python = PYTHONS[backend]
        if not os.path.exists(python):
            print(f"skipping {backend}: {python} missing (run scripts/test.sh)")
            continue
        command = [python, os.path.abspath(__file__), "--worker", backend]
        command += ["--bits", str(args.bits), "--seeds", *map(str, args.seeds)]
        if args.epochs:
            command += ["--epochs", str(args.epochs)]
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            print(result.stderr[-3000:], file=sys.stderr)
            return 1
        line = next(x for x in result.stdout.splitlines() if x.startswith("RUNS "))
        report = json.loads(line[len("RUNS ") :])
        runs += report["runs"]
        machines[backend] = report["machine"]
    lines, table = summarize(runs, args.backends)
    seeds = len(args.seeds)
    epochs = args.epochs or 15
    markdown = "\n".join(
        [
            f"# Backends: MNIST-5k, {args.bits} bits, {epochs} epochs, {seeds} seed(s)",
            "",
            "Median train-step time of the epochs after the first; mAP@all of "
            "the 1,000 queries (mean ± std over seeds). mlh / center is measured "
            "side by side in one process per backend; backends ran one after "
            "the other on a shared, noisy 2-core machine.",
            "",
            *lines,
            "",
            *[f"- {b}: {m}" for b, m in machines.items()],
            "",
            f"Command: `python benchmarks/backends.py {' '.join(argv or sys.argv[1:])}`",
            "",
        ]
    )
    name = "backends_quick" if args.quick else "backends"
    write(
        name, markdown, {"runs": runs, "summary": table, "machines": machines}, args.out
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ablation benchmark on the offline MNIST-5k split (run by hand).

Trains every mode (`mlh`, `center`, `pairwise`, `mlh_no_moh`, `mlh_no_mutual`)
at each bit length and seed with the package defaults, and reports mAP@all of
the 1,000 queries against the 4,000 database images (= training set), the
training time and the median train-step time (epochs after the first, so
tracing is excluded). Writes `benchmarks/results/ablation.{md,json,png}`.

    python benchmarks/ablation.py                 # 16/32/64 bits x 3 seeds
    python benchmarks/ablation.py --quick         # 1 seed, 16 bits, 2 epochs
    python benchmarks/ablation.py --bits 32 --seeds 0 --modes mlh center pairwise

Tuning the defaults never looks at the 1,000 queries: `--holdout` splits the
4,000 database images once more (seeded, stratified) into 1,000 validation
queries and a 3,000-image training database, and `--set name=value` overrides
an `MLH` argument of the modes run (for trying candidate defaults):

    python benchmarks/ablation.py --holdout --bits 16 32 --modes mlh \
        --set center_weight=4 --set mutual_weight=1 --name tune_paper_weights

Runs are interleaved (every mode for a seed and bit length, then the next) so
that a change in machine load affects all modes alike; ratios of step times
are taken within one run of this script.
"""

import argparse
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_override_option,
    add_result_options,
    machine,
    mode_bars,
    write,
)

import keras_mlh  # noqa: E402
from keras_mlh.metrics import mean_average_precision  # noqa: E402
from keras_mlh.training import default_training  # noqa: E402

MODES = list(keras_mlh.MODES)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bits", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--modes", nargs="+", default=MODES, choices=MODES)
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: the package's default"
    )
    parser.add_argument(
        "--quick", action="store_true", help="1 seed, 16 bits, 2 epochs"
    )
    parser.add_argument(
        "--holdout",
        action="store_true",
        help="tune on the database only: 1,000 of its images become the queries",
    )
    add_override_option(parser, "center_weight=4")
    add_result_options(
        parser,
        "ablation",
        {
            "metavar": "JSON",
            "help": "train nothing: re-render the table and chart of an earlier "
            "run's JSON",
        },
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.bits, args.seeds, args.epochs = [16], [0], args.epochs or 2
    if args.name is None and args.report_only:
        # Re-rendering keeps the name of what it re-renders.
        args.name = os.path.splitext(os.path.basename(args.report_only))[0]
    elif args.name is None:
        args.name = "ablation_quick" if args.quick else "ablation"
        if args.holdout or args.overrides:
            args.name = "tuning"
    return args


class EpochTimer(keras.callbacks.Callback):
    """Wall time of each epoch, to derive a step time free of tracing cost."""

    def on_train_begin(self, logs=None):
        self.times = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def load_data(holdout):
    data = keras_mlh.datasets.mnist5k()
    if not holdout:
        return data
    return keras_mlh.datasets.from_arrays(
        data.x_train, data.y_train, num_classes=10, num_queries=1000, seed=1
    )


def run_one(data, mode, bits, seed, epochs, overrides=None):
    keras.utils.set_random_seed(seed)
    model = keras_mlh.MLH(
        num_classes=data.num_classes, bits=bits, mode=mode, **(overrides or {})
    )
    recipe = default_training(epochs=epochs, steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer)
    timer = EpochTimer()
    start = time.perf_counter()
    model.fit(data.train, epochs=recipe.epochs, verbose=0, callbacks=[timer])
    seconds = time.perf_counter() - start
    steps = len(data.train)
    later = timer.times[1:] or timer.times
    step_ms = 1000 * float(np.median(later)) / steps
    score = mean_average_precision(
        model.encode(data.x_query),
        data.y_query,
        model.encode(data.x_database),
        data.y_database,
    )
    return {
        "mode": mode,
        "bits": bits,
        "seed": seed,
        "epochs": recipe.epochs,
        "map": float(score),
        "train_seconds": seconds,
        "step_ms": step_ms,
    }


def summarize(runs, modes, bits_list):
    table = {}
    for bits in bits_list:
        for mode in modes:
            rows = [r for r in runs if r["mode"] == mode and r["bits"] == bits]
            if not rows:
                continue
            maps = np.array([r["map"] for r in rows])
            table[(mode, bits)] = {
                "map_mean": float(maps.mean()),
                "map_std": float(maps.std()),
                "seconds_mean": float(np.mean([r["train_seconds"] for r in rows])),
                "step_ms_median": float(np.median([r["step_ms"] for r in rows])),
                "runs": len(rows),
            }
    return table


def markdown(table, modes, bits_list, meta):
    lines = [
        "# MLH ablation on MNIST-5k",
        "",
        f"{meta['split']}, mAP@all, {meta['epochs']} epochs, seeds {meta['seeds']}, "
        f"{meta['settings']}. Machine: {meta['machine']}. "
        f"Command: `{meta['command']}`.",
        "",
        "| mode | "
        + " | ".join(f"{b} bits mAP" for b in bits_list)
        + " | train s/run | step ms |",
        "|---|" + "---|" * len(bits_list) + "---|---|",
    ]
    for mode in modes:
        cells = []
        for bits in bits_list:
            cell = table.get((mode, bits))
            cells.append(
                f"{cell['map_mean']:.4f} ± {cell['map_std']:.4f}" if cell else "—"
            )
        cells_s = [table[(mode, b)] for b in bits_list if (mode, b) in table]
        seconds = np.mean([c["seconds_mean"] for c in cells_s])
        step = np.median([c["step_ms_median"] for c in cells_s])
        lines.append(
            f"| {mode} | " + " | ".join(cells) + f" | {seconds:.1f} | {step:.1f} |"
        )
    if ("mlh", bits_list[0]) in table and ("center", bits_list[0]) in table:
        ratios = [
            table[("mlh", b)]["step_ms_median"] / table[("center", b)]["step_ms_median"]
            for b in bits_list
            if ("mlh", b) in table and ("center", b) in table
        ]
        lines += [
            "",
            f"Train-step time, mlh / center: {np.median(ratios):.2f}x "
            "(median over bit lengths, same run).",
        ]
    claim = []
    for bits in bits_list:
        try:
            m, c, p = (
                table[(k, bits)]["map_mean"] for k in ("mlh", "center", "pairwise")
            )
        except KeyError:
            continue
        claim.append(
            f"{bits} bits: mlh {_order(m, c)} center, mlh {_order(m, p)} pairwise, "
            f"center {_order(c, p)} pairwise"
        )
    if claim:
        lines += [
            "",
            "Paper's claim (mlh > center > pairwise), on the means at 4 decimals: "
            + "; ".join(claim)
            + ".",
        ]
    return "\n".join(lines) + "\n"


def _order(a, b):
    a, b = round(a, 4), round(b, 4)
    return ">" if a > b else "=" if a == b else "<"


def plot(table, modes, bits_list, path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4), dpi=100)
    axes = figure.add_subplot(1, 1, 1)
    cells = {key: (v["map_mean"], v["map_std"]) for key, v in table.items()}
    low = mode_bars(axes, cells, modes, bits_list)
    axes.set_ylim(max(0.0, (low or 0.0) - 0.02), 1.0)
    axes.set_ylabel("mAP@all")
    axes.set_title("MNIST-5k: MLH and its baselines")
    axes.legend(
        fontsize=8, loc="upper center", ncol=len(modes), bbox_to_anchor=(0.5, -0.1)
    )
    figure.tight_layout()
    figure.savefig(path)


def report(runs, meta, name, folder):
    """Writes `name`.md/.json/.png in `folder` from the runs of one session."""
    modes = list(dict.fromkeys(r["mode"] for r in runs))
    bits_list = sorted({r["bits"] for r in runs})
    table = summarize(runs, modes, bits_list)
    summary = [{"mode": m, "bits": b, **v} for (m, b), v in table.items()]
    os.makedirs(folder, exist_ok=True)
    write(
        name,
        markdown(table, modes, bits_list, meta),
        {"meta": meta, "runs": runs, "summary": summary},
        folder=folder,
    )
    plot(table, modes, bits_list, os.path.join(folder, f"{name}.png"))


def main(argv=None):
    args = parse_args(argv)
    if args.report_only:
        with open(args.report_only) as f:
            earlier = json.load(f)
        report(earlier["runs"], earlier["meta"], args.name, args.out)
        return 0
    data = load_data(args.holdout)
    overrides = dict(args.overrides)
    runs = []
    for bits in args.bits:
        for seed in args.seeds:
            for mode in args.modes:
                run = run_one(data, mode, bits, seed, args.epochs, overrides)
                runs.append(run)
                print(
                    f"{mode:14s} bits={bits} seed={seed} mAP={run['map']:.4f} "
                    f"train={run['train_seconds']:.1f}s step={run['step_ms']:.1f}ms",
                    flush=True,
                )
    meta = {
        "epochs": runs[0]["epochs"],
        "seeds": args.seeds,
        "split": (
            "Hold-out of the database: 1,000 validation queries / 3,000 training "
            "images (the 1,000 test queries unused)"
            if args.holdout
            else "1,000 queries / 4,000 database (= training) images"
        ),
        "settings": (
            "package defaults with "
            + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
            if overrides
            else "package defaults"
        ),
        "overrides": overrides,
        "machine": machine(),
        "command": " ".join(
            ["python benchmarks/ablation.py", *(sys.argv[1:] if argv is None else argv)]
        ),
    }
    report(runs, meta, args.name, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

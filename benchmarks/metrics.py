"""Metric speed: mAP@all against the per-query full-sort reference loop.

1,000 queries x 50,000 database 64-bit codes, 10 classes, same run; the two
values must be identical. Target: ours >= 20x faster. The first call of a
process also loads numba's compiled kernel from its cache (or compiles it,
on a fresh install), so it is timed on its own; the ratio uses the median of
interleaved warm runs, as a training loop or an evaluation script calls the
metrics again and again.

    python benchmarks/metrics.py
"""

import os
import sys

import numpy as np
from _common import machine, seconds, write

from keras_mlh.metrics import mean_average_precision

# The reference loop lives with the tests that check the metrics against it.
sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests")
)
from reference_metrics import reference_mean_average_precision  # noqa: E402


def main(queries=1000, database=50_000, bits=64, classes=10, repeats=3):
    rng = np.random.default_rng(0)
    # Codes correlated with labels, so mAP is far from chance and ranking matters.
    centers = np.where(rng.random((classes, bits)) > 0.5, 1, -1)
    q_labels = rng.integers(0, classes, queries)
    d_labels = rng.integers(0, classes, database)

    def noisy(labels):
        flip = rng.random((len(labels), bits)) < 0.3
        return np.where(flip, -centers[labels], centers[labels]).astype(np.int8)

    args = (noisy(q_labels), q_labels, noisy(d_labels), d_labels)
    values = {}

    def ours():
        values["ours"] = mean_average_precision(*args)

    def reference():
        values["reference"] = reference_mean_average_precision(*args)

    first_s = seconds(ours)
    ours_times, reference_times = [], []
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        ours_times.append(seconds(ours))
        reference_times.append(seconds(reference))
    ours_s, reference_s = (
        float(np.median(ours_times)),
        float(np.median(reference_times)),
    )
    assert abs(values["ours"] - values["reference"]) < 1e-9, values
    ratio, first_ratio = reference_s / ours_s, reference_s / first_s
    markdown = (
        "# Metrics: mAP@all vs the per-query full-sort reference loop\n\n"
        f"{queries:,} queries x {database:,} database {bits}-bit codes, {classes} "
        f"classes, median of {repeats} interleaved runs. Machine: {machine()}. "
        "Command: `python benchmarks/metrics.py`.\n\n"
        "The reference (`keras_mlh.metrics.reference`) computes each query's "
        "distances with one float32 BLAS product and ranks the database with a "
        "stable argsort. Ours is one compiled scan per query, no sort "
        "(`keras_mlh/metrics/hamming_ranking.py`).\n\n"
        "| implementation | seconds | mAP@all |\n|---|---|---|\n"
        f"| per-query full sort (reference) | {reference_s:.3f} | "
        f"{values['reference']:.6f} |\n"
        f"| keras_mlh.metrics | {ours_s:.3f} | {values['ours']:.6f} |\n"
        f"| keras_mlh.metrics, first call of the process | {first_s:.3f} | |\n\n"
        f"Speed-up: **{ratio:.1f}x** (target >= 20x), {first_ratio:.1f}x for the "
        "first call; values identical.\n"
    )
    write(
        "metrics",
        markdown,
        {
            "ours_seconds": ours_s,
            "ours_first_call_seconds": first_s,
            "reference_seconds": reference_s,
            "ratio": ratio,
            "first_call_ratio": first_ratio,
            "map": values["ours"],
            "machine": machine(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

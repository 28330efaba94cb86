"""Metric speed: vectorized mAP@all against the per-query reference loop.

1,000 queries x 50,000 database 64-bit codes, 10 classes, same run; the two
values must be identical. Target: ours >= 20x faster.

    python benchmarks/metrics.py
"""

import sys
import time

import numpy as np
from _common import machine, write

from keras_mlh.metrics import mean_average_precision
from keras_mlh.metrics.reference import reference_mean_average_precision


def main(queries=1000, database=50_000, bits=64, classes=10):
    rng = np.random.default_rng(0)
    # Codes correlated with labels, so mAP is far from chance and ranking matters.
    centers = np.where(rng.random((classes, bits)) > 0.5, 1, -1)
    q_labels = rng.integers(0, classes, queries)
    d_labels = rng.integers(0, classes, database)

    def noisy(labels):
        flip = rng.random((len(labels), bits)) < 0.3
        return np.where(flip, -centers[labels], centers[labels]).astype(np.int8)

    q_codes, d_codes = noisy(q_labels), noisy(d_labels)
    start = time.perf_counter()
    ours = mean_average_precision(q_codes, q_labels, d_codes, d_labels)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    reference = reference_mean_average_precision(q_codes, q_labels, d_codes, d_labels)
    reference_s = time.perf_counter() - start
    assert abs(ours - reference) < 1e-9, (ours, reference)
    ratio = reference_s / ours_s
    markdown = (
        "# Metrics: vectorized mAP@all vs per-query reference loop\n\n"
        f"{queries:,} queries x {database:,} database {bits}-bit codes, {classes} "
        f"classes. Machine: {machine()}. Command: `python benchmarks/metrics.py`.\n\n"
        "| implementation | seconds | mAP@all |\n|---|---|---|\n"
        f"| per-query full sort (reference) | {reference_s:.2f} | {reference:.6f} |\n"
        f"| keras_mlh.metrics (blocks, counting sort) | {ours_s:.2f} | {ours:.6f} |\n\n"
        f"Speed-up: **{ratio:.1f}x** (target >= 20x); values identical.\n"
    )
    write(
        "metrics",
        markdown,
        {
            "ours_seconds": ours_s,
            "reference_seconds": reference_s,
            "ratio": ratio,
            "map": ours,
            "machine": machine(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

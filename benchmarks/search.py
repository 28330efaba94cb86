"""Search speed: HammingIndex against raw faiss.IndexBinaryFlat (run by hand).

1,000,000 random 64-bit codes, 100 queries, top-100, same codes, same run,
median of 5 timings each (interleaved). Target: ours <= 1.1x raw faiss.

    python benchmarks/search.py
"""

import sys

import faiss
import numpy as np
from _common import machine, seconds, write

from keras_mlh_runtime.index import HammingIndex


def main(n=1_000_000, queries=100, k=100, bits=64, repeats=5):
    rng = np.random.default_rng(0)
    database = rng.integers(0, 256, (n, bits // 8), dtype=np.uint8)
    query = rng.integers(0, 256, (queries, bits // 8), dtype=np.uint8)
    raw = faiss.IndexBinaryFlat(bits)
    raw.add(database)
    ours = HammingIndex(bits)
    ours.add(database)
    raw_d, raw_i = raw.search(query, k)
    our_d, our_i = ours.search(query, k)
    assert np.array_equal(raw_d, our_d), "distances differ"
    raw_times, our_times = [], []
    for _ in range(repeats):  # interleaved, so load changes hit both alike
        raw_times.append(seconds(lambda: raw.search(query, k)))
        our_times.append(seconds(lambda: ours.search(query, k)))
    raw_s, our_s = float(np.median(raw_times)), float(np.median(our_times))
    ratio = our_s / raw_s
    markdown = (
        "# Search: HammingIndex vs raw faiss.IndexBinaryFlat\n\n"
        f"{n:,} random {bits}-bit codes, {queries} queries, top-{k}, median of "
        f"{repeats} interleaved runs. Machine: {machine()}. "
        "Command: `python benchmarks/search.py`.\n\n"
        "| index | median seconds |\n|---|---|\n"
        f"| faiss.IndexBinaryFlat | {raw_s:.4f} |\n"
        f"| keras_mlh HammingIndex (flat) | {our_s:.4f} |\n\n"
        f"Ratio ours / faiss: **{ratio:.3f}x** (target <= 1.1x); distances identical.\n"
    )
    write(
        "search",
        markdown,
        {
            "raw_seconds": raw_s,
            "ours_seconds": our_s,
            "ratio": ratio,
            "n": n,
            "queries": queries,
            "k": k,
            "bits": bits,
            "machine": machine(),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

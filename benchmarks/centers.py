"""Build time of hash centers for many classes (`keras_mlh.hash_centers`).

Times `hash_centers(classes, 64)` for 1,000 to 20,000 classes (the search
path: more classes than `2 * bits`), each in a fresh process so that numba's
compiled kernel is loaded from its disk cache as in a user's second run (the
first call after an install also compiles it: `compile` below). Reported per
case: wall-clock and process CPU seconds of the call (the median of
`--repeats` processes), the minimum Hamming distance reached and the
Gilbert-Varshamov target it must meet.

Target (issue 23): 5,000 classes of 64 bits in under 10 s; before the fix the
search cost O(classes**2) per step (2,000 classes about 7 minutes, 5,000
about 48).

    python benchmarks/centers.py
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ((1000, 64), (5000, 64), (5000, 128), (10000, 64), (20000, 64))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", help="CLASSES,BITS: time one case (internal)")
    parser.add_argument("--name", default="centers")
    parser.add_argument("--out", default=None, help="results folder")
    return parser.parse_args(argv)


def run_case(classes, bits):
    """Times one build in this process; prints its numbers as JSON."""
    from keras_mlh.centers import hash_centers

    start = time.perf_counter()
    hash_centers(100, 48)  # a small search: loads (or compiles) the kernel
    compile_s = time.perf_counter() - start
    wall, cpu = time.perf_counter(), time.process_time()
    result = hash_centers(classes, bits)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        json.dumps(
            {
                "classes": classes,
                "bits": bits,
                "wall_s": wall,
                "cpu_s": cpu,
                "compile_s": compile_s,
                "min_distance": result.min_distance,
                "target_distance": result.target_distance,
                "method": result.method,
            }
        )
    )


def measure(classes, bits, repeats):
    runs = []
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, __file__, "--case", f"{classes},{bits}"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    row = dict(runs[-1])
    for key in ("wall_s", "cpu_s", "compile_s"):
        row[key] = statistics.median(r[key] for r in runs)
    return row


def main(argv=None):
    args = parse_args(argv)
    if args.case:
        run_case(*map(int, args.case.split(",")))
        return 0
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from _common import RESULTS, machine, write

    import keras_mlh.centers  # noqa: F401  (its numba version in `machine`)

    load_before = os.getloadavg()[0]
    rows = [measure(c, b, args.repeats) for c, b in CASES]
    load_after = os.getloadavg()[0]
    lines = [
        "# Hash centers: build time for many classes",
        "",
        f"`hash_centers(classes, bits)` (search path, seed 0), each case in "
        f"{args.repeats} fresh processes, median; numba's kernel comes from "
        "its disk cache (`compile`: loading it, or compiling it on a first "
        "run). Target: 5,000 classes of 64 bits in under 10 s (before: "
        "2,000 classes about 7 minutes, 5,000 about 48). Machine: "
        f"{machine()}; 1-minute load average {load_before:.1f} before and "
        f"{load_after:.1f} after. Command: `python benchmarks/centers.py`.",
        "",
        "| classes | bits | wall (s) | CPU (s) | compile (s) | min distance | target |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['classes']:,} | {r['bits']} | {r['wall_s']:.2f} "
            f"| {r['cpu_s']:.2f} | {r['compile_s']:.2f} "
            f"| {r['min_distance']} | {r['target_distance']} |"
        )
    data = {"machine": machine(), "load": [load_before, load_after], "rows": rows}
    write(args.name, "\n".join(lines) + "\n", data, folder=args.out or RESULTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())

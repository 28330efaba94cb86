"""Memory of building a flat HammingIndex with and without ids (run by hand).

Each case runs in a fresh process (`--case NAME`), so that one case's freed
memory cannot hide another's: the process imports numpy, faiss and
`keras_mlh_runtime.index` (no TensorFlow), resets its peak RSS (`VmHWM`,
through `/proc/self/clear_refs`) and notes its RSS as the baseline, then
adds `--n` random `--bits`-bit codes in `--batches` equal batches, each made
just before its add (the database is never held as one array). Reported,
minus the baseline: the peak RSS over the adds (`VmHWM`) and the steady RSS
once they are done (`VmRSS`), in MiB and as multiples of the codes' raw bytes
(`n * bits / 8`) and of codes plus ids (`+ n * 8`).

Cases:

- `HammingIndex, no ids`: the default ids;
- `HammingIndex, increasing ids`: user ids in increasing order (`3 i + 10**12`);
- `HammingIndex, scattered ids`: unique user ids in no order (`i` times an
  odd 64-bit constant, wrapped to 63 bits), what the id check of `add` works hardest on;
- `faiss IndexBinaryIDMap, scattered ids`: raw faiss, `IndexBinaryIDMap`
  over `IndexBinaryFlat`, the same codes and ids: "faiss's own";
- `faiss IndexBinaryFlat, no ids`: raw faiss without ids;
- `HammingIndex save` and `HammingIndex load`: the scattered-id index saved
  with `HammingIndex.save`, and loaded in a process of its own.

Target (issue 14): the index with ids within 1.2x of the codes plus ids plus
faiss's own, i.e. `scattered ids` <= 1.2x `faiss IndexBinaryIDMap`.

    python benchmarks/index_memory.py                 # 10,000,000 codes
    python benchmarks/index_memory.py --n 1000000     # a quick look
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

MIB = 1 << 20
# Odd, so that i -> i * _SCATTER (mod 2**64) is one-to-one; masked to 63
# bits it stays one-to-one for i < 2**63 and lands all over the id range.
_SCATTER = 0x9E3779B97F4A7C15
_MASK = (1 << 63) - 1

CASES = (
    "HammingIndex, no ids",
    "HammingIndex, increasing ids",
    "HammingIndex, scattered ids",
    "faiss IndexBinaryIDMap, scattered ids",
    "faiss IndexBinaryFlat, no ids",
    "HammingIndex save",
    "HammingIndex load",
)
FAISS_OWN = "faiss IndexBinaryIDMap, scattered ids"
WITH_IDS = "HammingIndex, scattered ids"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--case", choices=CASES, help="run one case (internal)")
    parser.add_argument("--file", help="the saved index of save/load (internal)")
    parser.add_argument("--name", default="index_memory")
    parser.add_argument("--out", default=None, help="results folder")
    return parser.parse_args(argv)


def _status(field):
    """A `/proc/self/status` field (`VmRSS`, `VmHWM`) in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status (Linux only)")


def batch_of(b, size, bits, ids):
    """Batch `b`: random packed codes and the ids of `ids`' kind."""
    import numpy as np

    codes = np.random.default_rng(b).integers(0, 256, (size, bits // 8), np.uint8)
    i = np.arange(b * size, (b + 1) * size, dtype=np.uint64)
    if ids == "increasing":
        return codes, (i * 3 + 10**12).astype(np.int64)
    if ids == "scattered":
        return codes, ((i * np.uint64(_SCATTER)) & np.uint64(_MASK)).astype(np.int64)
    return codes, None


def build(case, n, batches, bits):
    """The index of `case`, built batch by batch."""
    import faiss

    from keras_mlh_runtime.index import HammingIndex

    size = n // batches
    ids = (
        "scattered"
        if "scattered" in case or case == "HammingIndex save"
        else "increasing"
        if "increasing" in case
        else None
    )
    if case.startswith("faiss"):
        index = faiss.IndexBinaryFlat(bits)
        if ids:
            index = faiss.IndexBinaryIDMap(index)
    else:
        index = HammingIndex(bits)
    for b in range(batches):
        codes, batch_ids = batch_of(b, size, bits, ids)
        if case.startswith("faiss"):
            if batch_ids is None:
                index.add(codes)
            else:
                index.add_with_ids(codes, batch_ids)
        else:
            index.add(codes, ids=batch_ids)
    return index


def run_case(args):
    """One case in this process: its memory beyond the baseline, as JSON."""
    import gc

    import faiss  # noqa: F401 (imported before the baseline)
    import numpy  # noqa: F401

    from keras_mlh_runtime.index import HammingIndex

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    baseline = _status("VmRSS")
    start = time.perf_counter()
    if args.case == "HammingIndex load":
        index = HammingIndex.load(args.file)
    else:
        index = build(args.case, args.n, args.batches, args.bits)
        if args.case == "HammingIndex save":
            index.save(args.file)
    seconds = time.perf_counter() - start
    gc.collect()
    result = {
        "case": args.case,
        "count": int(index.ntotal if hasattr(index, "ntotal") else len(index)),
        "seconds": seconds,
        "baseline_mb": baseline / MIB,
        "peak_mb": (_status("VmHWM") - baseline) / MIB,
        "steady_mb": (_status("VmRSS") - baseline) / MIB,
    }
    print(json.dumps(result))
    return 0


def measure(args):
    """Every case, each in a fresh process."""
    results = []
    with tempfile.TemporaryDirectory(prefix="keras-mlh-index-memory-") as tmp:
        file = os.path.join(tmp, "db.index")
        for case in CASES:
            done = subprocess.run(
                [
                    sys.executable,
                    os.path.abspath(__file__),
                    "--case",
                    case,
                    "--n",
                    str(args.n),
                    "--batches",
                    str(args.batches),
                    "--bits",
                    str(args.bits),
                    "--file",
                    file,
                ],  # fmt: skip
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode:
                raise RuntimeError(f"case {case!r} failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(results[-1], flush=True)
    return results


def summary(results, n, bits):
    by_case = {r["case"]: r for r in results}
    codes_mb = n * bits / 8 / MIB
    ids_mb = n * 8 / MIB
    own, ours = by_case[FAISS_OWN], by_case[WITH_IDS]
    return {
        "codes_mb": codes_mb,
        "ids_mb": ids_mb,
        "faiss_own_beyond_codes_and_ids_mb": {
            k: own[k] - codes_mb - ids_mb for k in ("steady_mb", "peak_mb")
        },
        "with_ids_over_faiss": {k: ours[k] / own[k] for k in ("steady_mb", "peak_mb")},
        "target": 1.2,
    }


def markdown(results, data, args, machine):
    s = data["summary"]
    codes_mb, both_mb = s["codes_mb"], s["codes_mb"] + s["ids_mb"]
    rows = "".join(
        f"| {r['case']} | {r['seconds']:.1f} | {r['peak_mb']:,.0f} "
        f"| {r['peak_mb'] / codes_mb:.2f} | {r['peak_mb'] / both_mb:.2f} "
        f"| {r['steady_mb']:,.0f} | {r['steady_mb'] / codes_mb:.2f} "
        f"| {r['steady_mb'] / both_mb:.2f} | {r.get('kept_id_mb', 0):,.0f} |\n"
        for r in results
    )
    ratio = s["with_ids_over_faiss"]
    verdict = {k: "meets" if v <= s["target"] else "misses" for k, v in ratio.items()}
    return (
        "# Index memory: HammingIndex with and without ids vs raw faiss\n\n"
        f"{args.n:,} random {args.bits}-bit codes, flat index, added in "
        f"{args.batches} batches of {args.n // args.batches:,}; each case in a "
        "fresh process, RSS beyond the process's baseline after its imports "
        "(peak: `VmHWM` over the build, reset first; steady: `VmRSS` after "
        f"it). Raw sizes: codes {codes_mb:,.0f} MiB (n x bits / 8), ids "
        f"{s['ids_mb']:,.0f} MiB (n x 8). Load: the saved scattered-id index "
        "read back by `HammingIndex.load` in its own process. Machine: "
        f"{machine} (shared with other engineers' runs; memory, unlike time, "
        "does not depend on the load; the seconds are wall time under that "
        "load, for orientation only). "
        f"Command: `python benchmarks/index_memory.py --n {args.n}`.\n\n"
        "| case | seconds | peak MiB | peak / codes | peak / (codes + ids) "
        "| steady MiB | steady / codes | steady / (codes + ids) | kept id MiB |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"{rows}\n"
        "faiss's own beyond the raw codes and ids (`faiss IndexBinaryIDMap`): "
        f"{s['faiss_own_beyond_codes_and_ids_mb']['steady_mb']:,.0f} MiB steady, "
        f"{s['faiss_own_beyond_codes_and_ids_mb']['peak_mb']:,.0f} MiB peak.\n\n"
        "HammingIndex with scattered ids / raw faiss with the same ids (target "
        f"<= {s['target']}x, i.e. <= 1.2x (codes + ids + faiss's own)): "
        f"**{ratio['steady_mb']:.2f}x** steady ({verdict['steady_mb']}), "
        f"**{ratio['peak_mb']:.2f}x** peak ({verdict['peak_mb']}).\n"
    )


def main(argv=None):
    args = parse_args(argv)
    if args.case:
        return run_case(args)
    import faiss  # noqa: F401 (named in the machine line)
    import numpy  # noqa: F401
    from _common import RESULTS, machine, write

    results = measure(args)
    data = {
        "args": {k: v for k, v in vars(args).items() if k not in ("case", "file")},
        "results": results,
        "summary": summary(results, args.n, args.bits),
        "machine": machine(),
    }
    write(
        args.name, markdown(results, data, args, machine()), data, args.out or RESULTS
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Approximate search on learned-like codes: recall@k, latency, build time (by hand).

Trained hashing models put codes near their class's hash center: most codes
of a class are the center or a few bits off it, many are identical, a tail
is further out. Uniform random codes, the usual ANN benchmark, are the worst
case for IVF and HNSW and say nothing about this. The generator here
(`center_codes`) draws each code as

    class c ~ uniform over `num_classes` hash centers (`keras_mlh.hash_centers`,
              100 Hadamard centers of 64 bits, 32 bits apart)
    p       = max_flip * u**2, u ~ uniform(0, 1)   (per-code flip rate)
    code    = center[c] with each bit flipped independently with probability p

so the distance to the center is Binomial(64, p): about a third of the codes
are within 1 bit of their center (many exact copies), the mean is 4.3 bits,
a few reach 20. Queries come from the same distribution (another seed).
With `--mnist`, a second set replicates the codes of a quick MNIST-5k
model (1 epoch, 64 bits) with the same per-bit noise, so the clusters have
a trained model's shape (classes of unequal spread, a few codes between
centers). Uniform random codes (`--uniform-sizes`) are the contrast.

For each database size, HammingIndex with kind flat (the exact reference),
IVF (`nlist` lists, several `nprobe`), HNSW (several `ef_search`, built at
the sizes in `--hnsw-sizes`) and faiss's `IndexBinaryMultiHash` (several
`nflip`). Recall@k counts a returned item as a hit when its distance is at
most the exact k-th distance (ties at the k-th distance all count: with
thousands of identical codes, any k of them are right). Latency is the
median over `--repeats` runs (after a warm-up run) of one batch of queries,
divided by the number of queries, with faiss on `--threads` threads
(default 1, so that the ratios do not depend on how busy the shared
machine's other core is).
Speed-up is flat latency / latency, measured in the same run.

Also measured at the largest size: `HammingIndex.add` of the codes in 50
batches without ids, with increasing ids and with shuffled ids (time, and
the peak of numpy memory beyond faiss's own, from tracemalloc, as a multiple
of the codes' bytes).

    python benchmarks/ann.py                       # 1 M and 10 M codes
    python benchmarks/ann.py --quick               # seconds, for a smoke test
    python benchmarks/ann.py --report-only         # ann.md again from ann.json
"""

import argparse
import gc
import json
import os
import sys
import time
import tracemalloc

import faiss
import numpy as np
from _common import RESULTS, machine, write

from keras_mlh import hash_centers
from keras_mlh_runtime.index import HammingIndex


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--hnsw-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument("--bits", type=int, default=64)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--max-flip", type=float, default=0.2)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
    parser.add_argument(
        "--ef-search", type=int, nargs="+", default=[16, 64, 128, 256, 512]
    )
    parser.add_argument("--hnsw-neighbors", type=int, default=32)
    parser.add_argument("--nflip", type=int, nargs="*", default=[0, 1])
    parser.add_argument(
        "--multihash-sizes",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="sizes to build IndexBinaryMultiHash at (its search is slow on "
        "clustered codes: buckets hold whole classes)",
    )
    parser.add_argument("--threads", type=int, default=1, help="faiss threads, search")
    parser.add_argument("--build-threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--mnist", action="store_true", help="also MNIST-5k codes")
    parser.add_argument("--mnist-sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument(
        "--uniform-sizes",
        type=int,
        nargs="*",
        default=[1_000_000],
        help="sizes of uniform random codes, the contrast (default: 1 M)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    parser.add_argument("--out", default=None, help="results folder")
    parser.add_argument(
        "--report-only", action="store_true", help="rebuild the .md from the .json"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.hnsw_sizes, args.queries = [5_000], [5_000], 20
        args.nlist, args.nprobe, args.ef_search = 32, [1, 32], [16, 128]
        args.nflip, args.repeats, args.mnist_sizes = [0, 1], 1, [5_000]
        args.uniform_sizes = args.multihash_sizes = [5_000]
    return args


# ---------------------------------------------------------------- codes
def center_codes(n, centers, max_flip, seed, chunk=250_000):
    """Packed codes around `centers` (±1, `(classes, bits)`): see the docstring."""
    rng = np.random.default_rng(seed)
    center_bits = centers > 0
    out = np.empty((n, centers.shape[1] // 8), np.uint8)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        classes = rng.integers(0, len(centers), m)
        rate = max_flip * rng.random(m) ** 2
        flips = rng.random((m, centers.shape[1]), dtype=np.float32) < rate[:, None]
        out[start : start + m] = np.packbits(
            center_bits[classes] ^ flips, axis=1, bitorder="little"
        )
    return out


def mnist_centers(bits, seed=0):
    """±1 codes of the 5,000 MNIST-5k digits from a 1-epoch model (the "centers")."""
    import keras

    import keras_mlh

    keras.utils.set_random_seed(seed)
    data = keras_mlh.datasets.mnist5k()
    model = keras_mlh.MLH(num_classes=10, bits=bits)
    model.compile()
    model.fit(data.x_train, data.y_train, epochs=1, batch_size=64, verbose=0)
    images = np.concatenate([data.x_train, data.x_query])
    return np.asarray(model.encode(images)).astype(np.int8)


# -------------------------------------------------------------- measures
def timed(function, repeats):
    """(last result, median seconds of `repeats` calls after a warm-up call)."""
    function()  # warm-up: first-touch page faults and caches are not search time
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    return result, float(np.median(times))


def true_distances(database, queries, ids):
    """Hamming distances of `queries` to `database[ids]` (-1 ids: a big number)."""
    rows = database[np.maximum(ids, 0)]
    d = np.unpackbits(rows ^ queries[:, None, :], axis=-1).sum(-1)
    return np.where(ids >= 0, d, 1 << 30)


def recall(database, queries, ids, kth, k):
    """Recall@k with ties: a hit is an item at most the exact k-th distance."""
    hits = (true_distances(database, queries, ids) <= kth[:, None]).sum(1)
    return float(np.mean(np.minimum(hits, k) / k))


def measure(name, make, knob, params, database, queries, kth, args):
    """Rows of one approximate index: `make()` filled with `database` (the
    build time), then searched with its setting `knob` at each of `params`."""
    k, repeats = args.k, args.repeats
    faiss.omp_set_num_threads(args.build_threads)
    start = time.perf_counter()
    index = make()
    index.add(database)
    build_s = time.perf_counter() - start
    faiss.omp_set_num_threads(args.threads)

    def search(index, value):
        setattr(index, knob, value)
        return index.search(queries, k)

    rows = []
    for value in params:
        (_, ids), seconds = timed(lambda v=value, ix=index: search(ix, v), repeats)
        rows.append(
            {
                "index": name,
                "param": value,
                "recall": recall(database, queries, ids, kth, k),
                "ms_per_query": 1000 * seconds / len(queries),
                "build_s": build_s,
            }
        )
        print(rows[-1], flush=True)
    del index
    gc.collect()
    return rows


def make_codes(n, centers, args, seed):
    """Codes around `centers`, or uniform random codes for `centers=None`."""
    if centers is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 256, (n, args.bits // 8), dtype=np.uint8)
    return center_codes(n, centers, args.max_flip, seed)


def run_size(n, args, centers, label):
    database = make_codes(n, centers, args, seed=1)
    queries = make_codes(args.queries, centers, args, seed=2)
    bits, k, repeats = args.bits, args.k, args.repeats
    flat = HammingIndex(bits)
    start = time.perf_counter()
    flat.add(database)
    flat_build = time.perf_counter() - start
    (exact_d, _), flat_s = timed(lambda f=flat: f.search(queries, k), repeats)
    kth = exact_d[:, k - 1].astype(np.int64)
    del flat
    ties = float(np.mean(np.sum(exact_d == exact_d[:, -1:], axis=1)))
    rows = [
        {
            "index": "flat",
            "param": None,
            "recall": 1.0,
            "ms_per_query": 1000 * flat_s / len(queries),
            "build_s": flat_build,
        }
    ]
    codes = (database, queries, kth, args)
    rows += measure(
        f"ivf{args.nlist}", lambda: HammingIndex(bits, kind="ivf", nlist=args.nlist),
        "nprobe", args.nprobe, *codes,
    )  # fmt: skip
    if n in args.hnsw_sizes:
        rows += measure(
            f"hnsw{args.hnsw_neighbors}",
            lambda: HammingIndex(bits, kind="hnsw", hnsw_neighbors=args.hnsw_neighbors),
            "ef_search", args.ef_search, *codes,
        )  # fmt: skip
    nhash, b = 4, bits // 4  # 4 hash tables of 16-bit substrings at 64 bits
    if args.nflip and n in args.multihash_sizes:
        rows += measure(
            f"multihash{nhash}x{b}", lambda: faiss.IndexBinaryMultiHash(bits, nhash, b),
            "nflip", args.nflip, *codes,
        )  # fmt: skip
    flat_ms = rows[0]["ms_per_query"]
    for row in rows:
        row["speedup"] = flat_ms / row["ms_per_query"]
        row["n"], row["codes"] = n, label
    return rows, ties


def add_memory(n, args, centers):
    """Time and extra numpy memory of `HammingIndex.add` in 50 batches."""
    database = center_codes(n, centers, args.max_flip, seed=1)
    batches = 50
    size = n // batches
    shuffled = np.random.default_rng(3).permutation(n * 2)[:n]
    cases = {
        "no ids": None,
        "increasing ids": np.arange(n, dtype=np.int64) * 3,
        "shuffled ids": shuffled,
    }
    results = []
    for name, ids in cases.items():
        index = HammingIndex(args.bits)
        gc.collect()
        tracemalloc.start()
        start = time.perf_counter()
        for b in range(batches):
            part = slice(b * size, (b + 1) * size)
            index.add(database[part], None if ids is None else ids[part])
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        results.append(
            {
                "case": name,
                "seconds": seconds,
                "extra_memory_x_codes": peak / database[: batches * size].nbytes,
            }
        )
        print(results[-1], flush=True)
        del index
    return results


# ---------------------------------------------------------------- report
def markdown(data):
    """The Markdown report of a run's JSON (`--report-only` rebuilds it)."""
    args = argparse.Namespace(**data["args"])
    rows, adds = data["rows"], data["add"]
    command = data.get("command") or (
        "python benchmarks/ann.py"
        + (" --quick" if args.quick else "")
        + (" --mnist" if args.mnist else "")
    )
    lines = [
        "# Approximate search on learned-like codes\n",
        f"{args.bits}-bit codes around {args.classes} hash centers (per-code flip "
        f"rate {args.max_flip}·u², see the docstring of `benchmarks/ann.py`), "
        f"{args.queries} queries from the same distribution, top-{args.k}. "
        f"Recall@{args.k} against the flat scan, ties at the k-th distance "
        f"counted as hits. Latency: median of {args.repeats} runs of the query "
        f"batch / queries, faiss searching on {args.threads} thread(s) and "
        f"building on {args.build_threads}. Machine: "
        f"{data['machine']}; **shared with other engineers' jobs while this ran**, "
        "so absolute times are noisy; ratios come from the same run. "
        f"Command: `{command}`.\n",
        "## Fastest configuration with recall@k >= 0.95\n",
        "| codes | n | index | param | recall@k | speed-up vs flat |",
        "|---|---|---|---|---|---|",
    ]
    sets = [(t["n"], t["codes"], t["mean"]) for t in data["ties_at_kth"]]
    for n, label, _ in sets:
        good = [
            r for r in rows
            if (r["n"], r["codes"]) == (n, label) and r["recall"] >= 0.95
            and r["index"] != "flat"
        ]  # fmt: skip
        if good:
            r = max(good, key=lambda r: r["speedup"])
            lines.append(
                f"| {label} | {n:,} | {r['index']} | {r['param']} | "
                f"{r['recall']:.4f} | {r['speedup']:.1f}× |"
            )
    hnsw = [r for r in rows if r["index"].startswith("hnsw")]
    for n, label, mean_ties in sets:
        lines.append(
            f"\n## {n:,} codes ({label})\n\nOn average {mean_ties:.0f} database "
            f"codes are at the exact {args.k}-th distance of a query.\n"
        )
        lines.append(
            "| index | param | recall@k | ms / query | speed-up vs flat | build s |"
        )
        lines.append("|---|---|---|---|---|---|")
        for r in rows:
            if (r["n"], r["codes"]) != (n, label):
                continue
            param = "" if r["param"] is None else r["param"]
            lines.append(
                f"| {r['index']} | {param} | {r['recall']:.4f} | "
                f"{r['ms_per_query']:.4f} | {r['speedup']:.1f}× | {r['build_s']:.1f} |"
            )
        if hnsw and not any(r["n"] == n for r in hnsw):
            built = max(hnsw, key=lambda r: r["n"])
            lines.append(
                f"\nHNSW is not built at {n:,} codes: at {built['n']:,} its build "
                f"took {built['build_s']:.0f} s on {args.build_threads} thread(s), and "
                "the build grows faster than linearly (about n log n), so "
                f"{n:,} codes would take over {built['build_s'] * n / built['n'] / 60:.0f}"
                " minutes of a shared 2-core machine; IVF already meets the target."
            )
    multihash = [r for r in rows if r["index"].startswith("multihash")]
    if multihash:
        slowest = max(multihash, key=lambda r: r["ms_per_query"])
        lines.append(
            f"\nMulti-index hashing is measured at {slowest['n']:,} codes only: on "
            "clustered codes each 16-bit substring's bucket holds most of a class, "
            f"so a query took up to {slowest['ms_per_query']:.0f} ms there "
            f"({slowest['speedup']:.2f}× the flat scan's speed), and its cost grows "
            "with n like the flat scan's."
        )
    if adds:
        lines.append(
            f"\n## HammingIndex.add in 50 batches, {adds['n']:,} codes\n\n"
            "Extra memory: tracemalloc peak of numpy allocations during the adds "
            "(faiss's own storage is not counted), as a multiple of the codes' "
            "bytes.\n"
        )
        lines.append("| case | seconds | extra memory × codes |")
        lines.append("|---|---|---|")
        for a in adds["cases"]:
            lines.append(
                f"| {a['case']} | {a['seconds']:.2f} | "
                f"{a['extra_memory_x_codes']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None):
    args = parse_args(argv)
    name = "ann_quick" if args.quick else "ann"
    if args.report_only:
        folder = args.out or RESULTS
        with open(os.path.join(folder, name + ".json")) as f:
            data = json.load(f)
        write(name, markdown(data), data, folder=folder)
        return 0
    faiss.omp_set_num_threads(args.threads)
    centers = hash_centers(args.classes, args.bits).centers
    sets = [("centers", centers, args.sizes)]
    if args.mnist:
        sets.append(
            ("MNIST-5k model codes", mnist_centers(args.bits), args.mnist_sizes)
        )
    sets.append(("uniform random", None, args.uniform_sizes))
    rows, ties = [], {}
    for label, set_centers, sizes in sets:
        for n in sizes:
            print(f"--- {n:,} codes, {label}", flush=True)
            size_rows, mean_ties = run_size(n, args, set_centers, label)
            rows += size_rows
            ties[(n, label)] = mean_ties
    largest = max(args.sizes)
    adds = {"n": largest, "cases": add_memory(largest, args, centers)}
    data = {
        "command": _command(argv),
        "args": {k: v for k, v in vars(args).items() if k != "out"},
        "machine": machine(),
        "shared_machine": True,
        "rows": rows,
        "ties_at_kth": [
            {"n": n, "codes": label, "mean": t} for (n, label), t in ties.items()
        ],
        "add": adds,
    }
    write(name, markdown(data), data, **_folder(args))
    return 0


def _command(argv):
    """This run's command line, without its results folder."""
    words = list(sys.argv[1:] if argv is None else argv)
    if "--out" in words:
        del words[words.index("--out") : words.index("--out") + 2]
    return " ".join(["python benchmarks/ann.py", *words])


def _folder(args):
    return {} if args.out is None else {"folder": args.out}


if __name__ == "__main__":
    sys.exit(main())

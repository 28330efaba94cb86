"""The file route at real scale: fashion-cifar as 70,000 PNG files and list files.

Writes every Fashion-MNIST image as a PNG with the field's list files for
the `fashion-cifar` protocol (`train.txt`, `test.txt`, `database.txt`: a
relative path and a one-hot label a line, as HashNet and DeepHash-pytorch
distribute CIFAR-10), then trains and evaluates one configuration twice,
each route in its own process:

- files: `keras-mlh train --lists` then `keras-mlh evaluate`, images
  streamed from disk (`--val-every 0`: trained on all 5,000, as the grid);
- memory: `benchmarks/protocols.py`'s in-memory route on the same split.

It reports each route's mAP@all, peak RSS (its process's maximum resident
set, from `wait4`) and training images per second, to
`benchmarks/results/fashion_files.{json,md}`.

    python benchmarks/fashion_files.py                  # seed 0, mlh, 32 bits
    python benchmarks/fashion_files.py --folder /tmp/fc --mode center
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
from _common import RESULTS, machine
from protocols import fashion_cifar_split, pooled_fashion

HERE = os.path.dirname(os.path.abspath(__file__))


def write_list_files(folder, seed, path=None):
    """The PNG files and list files of fashion-cifar at `seed` under `folder`.

    Images already written are kept (the files are the same for every seed;
    only the lists change).
    """
    from PIL import Image

    from keras_mlh.datasets import fashion_mnist
    from keras_mlh.files import atomic_path

    x, y = pooled_fashion(fashion_mnist(path))
    os.makedirs(os.path.join(folder, "images"), exist_ok=True)
    names = [f"images/{i:05d}.png" for i in range(len(x))]
    for name, image in zip(names, x, strict=True):
        target = os.path.join(folder, name)
        if not os.path.exists(target):
            # Renamed into place: a killed run leaves no half-written image
            # for the next one to skip (no fsync: 70,000 of them cost minutes).
            Image.fromarray(image[..., 0]).save(target + ".tmp", format="PNG")
            os.replace(target + ".tmp", target)
    one_hot = np.eye(int(y.max()) + 1, dtype=int)[y]
    query, database, train = fashion_cifar_split(y, seed)
    for list_name, picked in (
        ("train.txt", train),
        ("test.txt", query),
        ("database.txt", database),
    ):
        with atomic_path(os.path.join(folder, list_name)) as temp:
            with open(temp, "w") as f:
                for i in picked:
                    f.write(names[i] + " " + " ".join(map(str, one_hot[i])) + "\n")
    return folder


def measured(command, env=None):
    """Runs `command`; returns `(seconds, peak RSS in MiB)` of that process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def files_route(folder, work, args):
    run = os.path.join(work, "run")
    cli = [sys.executable, "-m", "keras_mlh.cli"]
    train = [*cli, "train", "--lists", folder, "--out", run, "-q"]
    train += ["--image-size", "28", "--color-mode", "grayscale", "--val-every", "0"]
    train += ["--mode", args.mode, "--bits", str(args.bits), "--seed", str(args.seed)]
    seconds, rss = measured(train)
    eval_seconds, eval_rss = measured([*cli, "evaluate", run, "-q"])
    with open(os.path.join(run, "run.json")) as f:
        info = json.load(f)
    with open(os.path.join(run, "eval", "report.json")) as f:
        report = json.load(f)
    return {
        "route": "files (keras-mlh train --lists, evaluate; streamed)",
        "map": report["map"],
        "train_seconds": round(seconds, 1),
        "train_peak_rss_mib": round(rss),
        "evaluate_seconds": round(eval_seconds, 1),
        "evaluate_peak_rss_mib": round(eval_rss),
        "train_images_per_second": round(
            info["epochs"] * info["num_train"] / seconds, 1
        ),
    }


def memory_route(work, args):
    name = "memory"
    command = [sys.executable, os.path.join(HERE, "protocols.py")]
    command += ["--protocols", "fashion-cifar", "--modes", args.mode, "--out", work]
    command += ["--bits", str(args.bits), "--seeds", str(args.seed), "--name", name]
    seconds, rss = measured(command)
    with open(os.path.join(work, f"{name}.json")) as f:
        (row,) = json.load(f)
    return {
        "route": "memory (benchmarks/protocols.py, arrays)",
        "map": row["map"],
        "train_seconds": row["train_seconds"],
        "peak_rss_mib": round(rss),
        "process_seconds": round(seconds, 1),
        "train_images_per_second": round(
            row["epochs"]
            * row["config"]["protocol"]["num_train"]
            / row["train_seconds"],
            1,
        ),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--folder", default=os.path.join(tempfile.gettempdir(), "fashion-cifar")
    )
    parser.add_argument("--fashion-mnist", default=None, metavar="DIR")
    parser.add_argument("--mode", default="mlh")
    parser.add_argument("--bits", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=RESULTS)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    write_list_files(args.folder, args.seed, args.fashion_mnist)
    written = round(time.perf_counter() - start, 1)
    with tempfile.TemporaryDirectory() as work:
        rows = [files_route(args.folder, work, args), memory_route(work, args)]
    result = {
        "protocol": "fashion-cifar",
        "mode": args.mode,
        "bits": args.bits,
        "seed": args.seed,
        "write_files_seconds": written,
        "routes": rows,
        "machine": machine(),
        "command": "python benchmarks/fashion_files.py "
        + " ".join(argv or sys.argv[1:]),
    }
    from keras_mlh.files import atomic_path

    with atomic_path(os.path.join(args.out, "fashion_files.json")) as temp:
        with open(temp, "w") as f:
            json.dump(result, f, indent=1)
    lines = [
        "# fashion-cifar through list files and through arrays",
        "",
        f"{args.mode}, {args.bits} bits, seed {args.seed}; {result['machine']}. "
        f"`{result['command']}`",
        "",
        "Seconds: the files route's are the whole `keras-mlh train` process "
        "(start-up, checks, fit, saving the run), the memory route's `fit` "
        "alone; images/s are training images over those seconds.",
        "",
        "| route | mAP@all | train s | train images/s | peak RSS MiB |",
        "|---|---|---|---|---|",
    ]
    for row in rows:
        rss = row.get("peak_rss_mib") or (
            f"{row['train_peak_rss_mib']} (train), {row['evaluate_peak_rss_mib']} (evaluate)"
        )
        lines.append(
            f"| {row['route']} | {row['map']:.4f} | {row['train_seconds']:.0f} | "
            f"{row['train_images_per_second']:.0f} | {rss} |"
        )
    text = "\n".join(lines) + "\n"
    with atomic_path(os.path.join(args.out, "fashion_files.md")) as temp:
        with open(temp, "w") as f:
            f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

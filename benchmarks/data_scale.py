"""Memory and speed of the streamed image pipeline as the dataset grows.

Makes synthetic JPEG folders (10 classes, 224x224 by default) with list
files (`train.txt` = `database.txt` = every image, `test.txt` a tenth), then
measures, each in a fresh process so that peak RSS is its own:

- `pipeline`: one epoch of `FileHashingData.train` alone (read, decode,
  resize, shuffle, batch; no model),
- `train`: `MLH.fit` on it for one epoch (small backbone),
- `encode`: streamed encoding of the database, as `keras-mlh evaluate` does.

Peak RSS should not grow with the number of images (target: at 40,000 at
most 1.2x that at 5,000), and the pipeline alone should deliver at least 3x
the images/s the training step consumes. `--max-steps` caps the batches of
`train` (and `--encode-max-steps` those of `encode`) on slow machines: the
whole file list is still loaded and shuffled (the shuffle buffer fills with
every name before the first batch), so what grows with the dataset is
measured; the images/s are then over the capped steps. `pipeline` always
runs a full epoch. The results file extrapolates peak RSS linearly to
ImageNet-100 (130,000 images), marked as extrapolated.

    python benchmarks/data_scale.py                 # 5,000 and 40,000 images
    python benchmarks/data_scale.py --quick         # 300 and 1,200 at 64x64
    python benchmarks/data_scale.py --max-steps 40  # full encode, train capped
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import RESULTS, machine, write  # noqa: E402

CLASSES = 10
IMAGENET100 = 130_000
TARGET_RAM_GB = 8.0


def make_dataset(folder, count, size, seed=0):
    """`count` synthetic JPEGs under `folder/images/`, list files in `folder/`.

    Each class has its own colour and stripe frequency, plus noise, so the
    files are realistic JPEGs (not constant) of about 10-20 kB at 224x224.
    """
    from PIL import Image

    done = os.path.join(folder, "database.txt")
    if os.path.exists(done):
        return folder
    rng = np.random.default_rng(seed)
    rows = []
    ramp = np.linspace(0, 1, size)[None, :, None]
    for i in range(count):
        label = i % CLASSES
        colour = np.array([(label * 37) % 256, (label * 91) % 256, (label * 53) % 256])
        stripes = 0.5 + 0.5 * np.sin(2 * np.pi * (label + 1) * ramp)
        noise = rng.normal(0, 20, (size, size, 3))
        pixels = np.clip(colour * stripes + 40 * stripes + noise, 0, 255)
        relative = f"c{label}/{i:06d}.jpg"
        path = os.path.join(folder, "images", relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
        hot = " ".join("1" if j == label else "0" for j in range(CLASSES))
        rows.append(f"{relative} {hot}")
    with open(os.path.join(folder, "train.txt"), "w") as f:
        f.write("\n".join(rows) + "\n")
    with open(os.path.join(folder, "test.txt"), "w") as f:
        f.write("\n".join(rows[::10]) + "\n")
    with open(done + ".tmp", "w") as f:  # last: its presence means complete
        f.write("\n".join(rows) + "\n")
    os.replace(done + ".tmp", done)
    return folder


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def child(args):
    """One measurement in this process; prints a JSON line."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from keras_mlh import MLH
    from keras_mlh.datasets import from_list_files

    size = (args.image_size, args.image_size)
    data = from_list_files(
        args.folder,
        image_root=os.path.join(args.folder, "images"),
        image_size=size,
        batch_size=args.batch_size,
    )
    steps = args.encode_max_steps if args.child == "encode" else args.max_steps
    start = time.perf_counter()
    images = 0
    if args.child == "pipeline":
        for batch, _ in data.train.take(steps or -1).as_numpy_iterator():
            images += len(batch)
    else:
        keras.utils.set_random_seed(0)
        model = MLH(num_classes=data.num_classes, bits=32)
        model.compile()
        if args.child == "train":
            model.fit(data.train.take(1), epochs=1, verbose=0)  # builds, traces
            start = time.perf_counter()
            dataset = data.train.take(steps) if steps else data.train
            model.fit(dataset, epochs=1, verbose=0)
            images = min(len(data.y_train), (steps or 10**12) * args.batch_size)
        else:  # encode, chunk by chunk as `keras-mlh evaluate` does
            from keras_mlh.encoding import encode_images, file_images

            model.encode(np.zeros((1, *size, 3), np.uint8))
            start = time.perf_counter()
            paths = data.database_paths
            if steps:
                paths = paths[: steps * args.batch_size]
            images = file_images(paths, (*size, 3))
            images.chunks = logged(images.chunks, args, start)
            images = len(encode_images(model, images, args.batch_size, verbose=0))
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "mode": args.child,
                "dataset_images": int(len(data.y_train)),
                "images": int(images),
                "seconds": seconds,
                "images_per_second": images / seconds,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )
    return 0


def logged(chunks, args, start):
    """`chunks`, appending images done, seconds and peak RSS to a log file.

    The log (`<folder>/<mode>.progress.jsonl`) outlives a run stopped early.
    """
    path = os.path.join(args.folder, f"{args.child}.progress.jsonl")

    def wrapped(size):
        done = 0
        with open(path, "a") as log:
            for chunk in chunks(size):
                done += len(chunk)
                yield chunk
                if done % (20 * size) < size:
                    row = {"images": done, "seconds": time.perf_counter() - start}
                    log.write(json.dumps({**row, "peak_rss_mb": peak_rss_mb()}) + "\n")
                    log.flush()

    return wrapped


def measure(folder, mode, args):
    command = [
        sys.executable, os.path.abspath(__file__), "--child", mode,
        "--folder", folder, "--image-size", str(args.image_size),
        "--batch-size", str(args.batch_size),
    ]  # fmt: skip
    if args.max_steps and mode == "train":
        command += ["--max-steps", str(args.max_steps)]
    if args.encode_max_steps and mode == "encode":
        command += ["--encode-max-steps", str(args.encode_max_steps)]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode:
        raise SystemExit(f"{mode} on {folder} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def report(rows, args):
    sizes = sorted({r["dataset_images"] for r in rows})
    lines = [
        "# Data scale: the streamed image pipeline",
        "",
        f"Machine: {machine()}. Synthetic JPEGs, {args.image_size}x"
        f"{args.image_size}, {CLASSES} classes, batch {args.batch_size}, small "
        "backbone, 32 bits. Each row is a fresh process (peak RSS is its own). "
        "The machine is shared and noisy: compare rows of one run only.",
        "",
    ]
    capped = [
        f"`{mode}` ran at most {steps} batches"
        for mode, steps in (
            ("train", args.max_steps),
            ("encode", args.encode_max_steps),
        )
        if steps
    ]
    full = ["pipeline"] + [
        mode
        for mode, steps in (
            ("train", args.max_steps),
            ("encode", args.encode_max_steps),
        )
        if not steps
    ]
    lines += [
        f"{', '.join(f'`{m}`' for m in full)} ran a full epoch of every image. "
        + (
            "; ".join(capped) + " (a full CPU epoch is too long here); the whole "
            "file list was still loaded and shuffled."
            if capped
            else ""
        ),
        "",
    ]
    lines += [
        "| images | mode | images measured | seconds | images/s | peak RSS (MB) |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['dataset_images']:,} | {r['mode']} | {r['images']:,} | "
            f"{r['seconds']:.1f} | {r['images_per_second']:.0f} | "
            f"{r['peak_rss_mb']:.0f} |"
        )
    by = {(r["dataset_images"], r["mode"]): r for r in rows}
    small, large = sizes[0], sizes[-1]
    summary = {}
    lines += ["", f"Ratios ({large:,} against {small:,} images, same run):", ""]
    for mode in ("pipeline", "train", "encode"):
        a, b = by[(small, mode)], by[(large, mode)]
        growth = b["peak_rss_mb"] / a["peak_rss_mb"]
        # A negative slope is noise: memory cannot shrink with more images.
        slope = max(0.0, (b["peak_rss_mb"] - a["peak_rss_mb"]) / (large - small))
        extrapolated = b["peak_rss_mb"] + slope * (IMAGENET100 - large)
        summary[mode] = {
            "rss_growth": growth,
            "extrapolated_rss_mb_130k": extrapolated,
        }
        lines.append(
            f"- {mode}: peak RSS x{growth:.2f} (target <= 1.2); "
            f"**extrapolated** (linear in the number of images, not measured) "
            f"to ImageNet-100's {IMAGENET100:,} images: {extrapolated:.0f} MB "
            f"({'fits' if extrapolated < TARGET_RAM_GB * 1024 else 'does NOT fit'}"
            f" in {TARGET_RAM_GB:.0f} GB)"
        )
    for size in sizes:
        ratio = (
            by[(size, "pipeline")]["images_per_second"]
            / by[(size, "train")]["images_per_second"]
        )
        summary[f"pipeline_over_train_{size}"] = ratio
        lines.append(
            f"- {size:,} images: the input pipeline alone delivers x{ratio:.1f} "
            "the images/s the training step consumes (target >= 3)"
        )
    command = "python benchmarks/data_scale.py " + " ".join(args.argv)
    lines += ["", f"Command: `{command.strip()}`", ""]
    return "\n".join(lines), {"rows": rows, "summary": summary}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5_000, 40_000])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--max-steps", type=int, default=None, help="cap of train batches"
    )
    parser.add_argument(
        "--encode-max-steps", type=int, default=None, help="cap of encode batches"
    )
    parser.add_argument(
        "--work",
        default=os.path.join(os.environ.get("TMPDIR", "/tmp"), "keras-mlh-data-scale"),
        help="where the synthetic datasets are made (kept for reruns)",
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--out", default=RESULTS)
    parser.add_argument("--child", choices=("pipeline", "train", "encode"))
    parser.add_argument("--folder")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.quick and "--sizes" not in args.argv:
        args.sizes = [300, 1_200]
    if args.quick and "--image-size" not in args.argv:
        args.image_size = 64
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        return child(args)
    rows = []
    for count in sorted(args.sizes):
        folder = os.path.join(args.work, f"{count}-{args.image_size}")
        print(f"Making {count:,} JPEGs in {folder} (kept for reruns)", flush=True)
        make_dataset(folder, count, args.image_size)
        for mode in ("pipeline", "train", "encode"):
            rows.append(measure(folder, mode, args))
            print(json.dumps(rows[-1]), flush=True)
    markdown, data = report(rows, args)
    write("data_scale_quick" if args.quick else "data_scale", markdown, data, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

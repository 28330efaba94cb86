"""Encode speed of an exported encoder: Keras vs SavedModel vs onnxruntime (by hand).

Trains a 32-bit MLH for 1 epoch on the 4,000 MNIST-5k training digits,
exports it (`keras_mlh.export.export_encoder`), then times the same query
digits through five routes, in the same run, at batch 1 and batch 64:

- Keras `predict`: `encoder.predict(x, batch_size=b)` on the Keras encoder
  (`model.build_encoder()`), the usual Keras inference entry point;
- Keras direct call: `encoder(x, training=False)`, one eager call per batch;
- SavedModel: the reloaded `serving_default` signature (all three outputs
  computed, `packed` fetched as numpy);
- onnxruntime: `keras_mlh_runtime.HashEncoder.encode` (packed codes, input
  checks included), CPU execution provider, with onnxruntime's default
  threads and with `threads=1`.

Throughput is images per second, the median of `repeats` interleaved timings
(each route once per round, so load changes hit all alike). Target:
onnxruntime >= 1.0x the SavedModel at both batch sizes.

Then streaming encode against one in-process call on the same 4,000 digits,
written once as an `.npy` and as 4,000 PNG files:

- Keras: `model.encode(x)` on the decoded array (one call) against the loop
  `keras-mlh encode` runs after loading the model (`keras_mlh.encoding`
  `open_images` + `encode_images`: one `predict` over chunks read ahead) on
  the `.npy` and on the PNG folder, and the loop it replaced (one
  `model.encode` per 256-image chunk, read in line);
- onnxruntime: `session.run` of the `packed` output per 256-image batch of
  the float32 array already in memory (pure inference at the same batch size:
  the one in-process call) against `HashEncoder.encode(x)` (uint8 in, checks
  and float32 copies a batch ahead) and `HashEncoder.encode_files(paths)`
  (PNG decoding in a thread pool a batch ahead); one `session.run` of all
  4,000 at once is listed too, to show what the batch size alone changes.

The PNG routes are also compared with the in-process call on the same files
with their decoding counted (decode every file into one array with the same
reader, in parallel, then the in-memory call): decoding is then on both
sides. Against the pure in-memory call it is on one side only, which on two
cores already busy with inference cannot reach 0.9x unless decoding is far
cheaper than inference.

Target: streaming >= 0.9x the in-process call on the same input at the same
batch size, for both families (decode counted on both sides for files).

The CPU ceiling: process CPU time per image of the in-memory call (`infer`)
and of decoding all the PNGs with the family's reader alone (`decode`), so
that the best ratio of a file route to already-decoded pixels on saturated
cores, `infer / (infer + decode)`, is printed next to the measured one.

    python benchmarks/encode.py
"""

import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from concurrent.futures import ThreadPoolExecutor  # noqa: E402

import numpy as np  # noqa: E402
from _common import machine, write  # noqa: E402

# The one in-process call with the decoding of the same PNG files counted:
# every file decoded into one array first (the reader the streamed route
# uses, as parallel), then the in-memory call.
DECODED = {
    "keras": "decode all PNGs (tf.data), then model.encode(x)",
    "onnxruntime": "decode all PNGs (Pillow, thread pool), then session.run per batch",
}


# The streamed route from image files of each family (its ratio to the
# family's in-memory call is set against the CPU ceiling).
PNG_ROUTE = {
    "keras": "keras-mlh encode loop, PNG folder",
    "onnxruntime": "HashEncoder.encode_files(PNG paths)",
}


def _wall_and_cpu(function):
    """Wall-clock and process CPU seconds (all threads) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def _ceiling(infer_cpu, decode_cpu, measured, in_memory_images_per_second):
    """The best ratio a file route can reach against the in-memory call when
    both keep every core busy: each image then costs its inference and its
    decoding in CPU time, so images/s fall by `infer / (infer + decode)`."""
    ceiling = infer_cpu / (infer_cpu + decode_cpu)
    busy = infer_cpu * in_memory_images_per_second
    return {
        "infer_cpu_microseconds": infer_cpu * 1e6,
        "decode_cpu_microseconds": decode_cpu * 1e6,
        # CPU seconds per image x images per second: cores kept busy.
        "in_memory_cores_busy": busy,
        "ceiling": ceiling,
        # Were every core of the machine free for this process alone: the
        # file route needs (infer + decode) CPU per image, on all cores.
        "ceiling_all_cores_free": min(
            1.0, (os.cpu_count() or 1) / (busy * (infer_cpu + decode_cpu) / infer_cpu)
        ),
        "measured": measured,
        "measured_over_ceiling": measured / ceiling,
    }


def _throughput(function, images, batch):
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        function(images[i : i + batch])
    return len(images) / (time.perf_counter() - start)


def main(epochs=1, bits=32, repeats=5, single_images=128, batched_images=1024):
    import keras
    import tensorflow as tf

    import keras_mlh
    from keras_mlh.export import export_encoder
    from keras_mlh_runtime import HashEncoder

    keras.utils.set_random_seed(0)
    data = keras_mlh.datasets.mnist5k()
    model = keras_mlh.MLH(num_classes=10, bits=bits)
    model.compile()
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=64, verbose=0)
    encoder = model.build_encoder()
    with tempfile.TemporaryDirectory(prefix="keras-mlh-bench-") as tmp:
        folder = os.path.join(tmp, "encoder")
        metadata = export_encoder(model, folder, sample_images=data.x_query)
        # Both load their files into memory: the folder can go afterwards.
        saved_model = tf.saved_model.load(os.path.join(folder, "saved_model"))
        runtime = HashEncoder.load(folder)
        single_thread = HashEncoder.load(folder, threads=1)
    serving = saved_model.signatures["serving_default"]

    def saved_model_packed(x):
        return serving(images=tf.constant(x))["packed"].numpy()

    routes = {
        "Keras predict": lambda x: encoder.predict(x, batch_size=len(x), verbose=0),
        "Keras direct call": lambda x: encoder(x, training=False),
        "SavedModel signature": saved_model_packed,
        "onnxruntime (HashEncoder)": lambda x: runtime.encode(x, batch_size=len(x)),
        "onnxruntime (HashEncoder, threads=1)": (
            lambda x: single_thread.encode(x, batch_size=len(x))
        ),
    }
    query = np.resize(data.x_query.astype(np.float32), (batched_images, 28, 28, 1))
    sizes = {1: query[:single_images], 64: query}
    results = {name: {b: [] for b in sizes} for name in routes}
    load_before = os.getloadavg()[0]
    for function in routes.values():  # warm up: tracing, first allocations
        for b, images in sizes.items():
            _throughput(function, images[: 2 * b], b)
    for _ in range(repeats):
        for b, images in sizes.items():
            for name, function in routes.items():
                results[name][b].append(_throughput(function, images, b))
    stream = _streaming(model, runtime, data.x_train, repeats)
    load_after = os.getloadavg()[0]
    medians = {
        name: {b: float(np.median(t)) for b, t in per_batch.items()}
        for name, per_batch in results.items()
    }
    ratios = {
        name: {b: medians[name][b] / medians["SavedModel signature"][b] for b in sizes}
        for name in medians
        if name.startswith("onnxruntime")
    }
    rows = "".join(
        f"| {name} | {m[1]:,.0f} | {m[64]:,.0f} |\n" for name, m in medians.items()
    )
    shared = (
        " (above the core count: the CPU was shared with other work, so compare "
        "routes within this run only)"
        if max(load_before, load_after) > os.cpu_count()
        else ""
    )
    agreement = metadata["validation"]["onnx"]["bit_agreement"]
    markdown = (
        "# Encode: Keras vs SavedModel vs onnxruntime\n\n"
        f"One {bits}-bit MLH (default backbone) trained {epochs} epoch(s) on "
        f"MNIST-5k, exported once; {single_images} query digits one at a time "
        f"and {batched_images} in batches of 64; images/s, median of {repeats} "
        "interleaved runs, same process. Keras predict is `encoder.predict`, "
        "Keras direct call is `encoder(x, training=False)` (eager); onnxruntime "
        "is `HashEncoder.encode` (input checks included, packed codes out). "
        f"ONNX bits equal to Keras's on the 1,000 queries: {100 * agreement:.2f}%. "
        f"Machine: {machine()}; 1-minute load average {load_before:.1f} before "
        f"and {load_after:.1f} after the timings{shared}. "
        "Command: `python benchmarks/encode.py`.\n\n"
        "| route | batch 1 (images/s) | batch 64 (images/s) |\n|---|---|---|\n"
        f"{rows}\n"
        "onnxruntime / SavedModel (target >= 1.0x at both batch sizes):\n\n"
        + "".join(
            f"- {name}: **{r[1]:.2f}x** at batch 1, **{r[64]:.2f}x** at batch 64\n"
            for name, r in ratios.items()
        )
        + _streaming_markdown(stream)
    )
    write(
        "encode",
        markdown,
        {
            "images_per_second": {
                name: {str(b): v for b, v in m.items()} for name, m in medians.items()
            },
            "runs": {
                name: {str(b): v for b, v in r.items()} for name, r in results.items()
            },
            "onnx_over_saved_model": {
                name: {str(b): v for b, v in r.items()} for name, r in ratios.items()
            },
            "bits": bits,
            "epochs": epochs,
            "repeats": repeats,
            "single_images": single_images,
            "batched_images": batched_images,
            "onnx_bit_agreement": agreement,
            "streaming": stream,
            "load_average": [load_before, load_after],
            "machine": machine(),
        },
    )
    return 0


def _streaming(model, runtime, images, repeats, chunk=256):
    """Images/s of streaming encode routes and of one in-process call."""
    from PIL import Image

    from keras_mlh.encoding import encode_images, open_images
    from keras_mlh_runtime.images import read_image

    with tempfile.TemporaryDirectory(prefix="keras-mlh-stream-") as tmp:
        npy = os.path.join(tmp, "images.npy")
        np.save(npy, images)
        folder = os.path.join(tmp, "images")
        os.makedirs(folder)
        paths = [os.path.join(folder, f"{i:05d}.png") for i in range(len(images))]
        for path, image in zip(paths, images, strict=True):
            Image.fromarray(image[..., 0]).save(path)
        shape = model.image_shape
        pixels = images.astype(np.float32)

        def decoded_then_run():  # decode every file first (same reader, pool)
            with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                read = pool.map(lambda p: read_image(p, shape), paths)
                decoded = np.stack(list(read)).astype(np.float32)
            return np.concatenate(
                [
                    runtime.session.run(
                        ["packed"], {runtime.input_name: decoded[i : i + chunk]}
                    )[0]
                    for i in range(0, len(decoded), chunk)
                ]
            )

        def per_chunk(path):  # the loop before: one predict per chunk
            chunks = open_images(path, shape).chunks(chunk)
            return np.concatenate([model.encode(c, batch_size=chunk) for c in chunks])

        routes = {
            "keras": {
                "in memory: model.encode(x)": lambda: model.encode(images, chunk),
                "keras-mlh encode loop, .npy": lambda: encode_images(
                    model, open_images(npy, shape), chunk, 0
                ),
                "keras-mlh encode loop, PNG folder": lambda: encode_images(
                    model, open_images(folder, shape), chunk, 0
                ),
                DECODED["keras"]: lambda: model.encode(
                    np.concatenate(list(open_images(folder, shape).chunks(chunk))),
                    chunk,
                ),
                "before: model.encode per chunk, .npy": lambda: per_chunk(npy),
            },
            "onnxruntime": {
                "in memory: session.run per batch of float32 x": lambda: np.concatenate(
                    [
                        runtime.session.run(
                            ["packed"], {runtime.input_name: pixels[i : i + chunk]}
                        )[0]
                        for i in range(0, len(pixels), chunk)
                    ]
                ),
                "in memory: one session.run of all x": lambda: runtime.session.run(
                    ["packed"], {runtime.input_name: pixels}
                )[0],
                "HashEncoder.encode(x)": lambda: runtime.encode(images, chunk),
                "HashEncoder.encode_files(PNG paths)": lambda: runtime.encode_files(
                    paths, chunk
                ),
                DECODED["onnxruntime"]: lambda: decoded_then_run(),
            },
        }
        # Same codes from every route of a family (checked once, untimed).
        for family in routes.values():
            outputs = [route() for route in family.values()]
            for output in outputs[1:]:
                np.testing.assert_array_equal(output, outputs[0])
        # Decoding alone, with each family's reader: Pillow (`read_image`,
        # what encode_files runs) and tf.data (what keras-mlh encode runs).
        decoders = {
            "onnxruntime": lambda: [read_image(p, shape) for p in paths],
            "keras": lambda: list(open_images(folder, shape).chunks(chunk)),
        }
        times = {f: {name: [] for name in r} for f, r in routes.items()}
        cpu = {f: {name: [] for name in r} for f, r in routes.items()}
        decode = []  # one thread, for the CPU cost that inference competes with
        decode_cpu = {f: [] for f in decoders}
        for _ in range(repeats):
            for family, decoder in decoders.items():
                wall, cpu_seconds = _wall_and_cpu(decoder)
                decode_cpu[family].append(cpu_seconds / len(paths))
                if family == "onnxruntime":
                    decode.append(wall / len(paths))
            for family, family_routes in routes.items():
                for name, route in family_routes.items():
                    wall, cpu_seconds = _wall_and_cpu(route)
                    times[family][name].append(len(images) / wall)
                    cpu[family][name].append(cpu_seconds / len(images))
    medians = {
        f: {name: float(np.median(t)) for name, t in per.items()}
        for f, per in times.items()
    }
    return {
        "images": len(images),
        "batch_size": chunk,
        "decode_microseconds_per_image": float(np.median(decode) * 1e6),
        "images_per_second": medians,
        "runs": times,
        "cpu_ceiling": {
            family: _ceiling(
                float(np.median(next(iter(cpu[family].values())))),
                float(np.median(decode_cpu[family])),
                medians[family][PNG_ROUTE[family]]
                / next(iter(medians[family].values())),
                next(iter(medians[family].values())),
            )
            for family in routes
        },
        "cpu_microseconds_per_image": {
            f: {name: float(np.median(t) * 1e6) for name, t in per.items()}
            for f, per in cpu.items()
        },
        "over_in_memory": {
            f: {name: v / next(iter(per.values())) for name, v in per.items()}
            for f, per in medians.items()
        },
        "over_decoded": {
            f: {name: v / per[DECODED[f]] for name, v in per.items() if "PNG" in name}
            for f, per in medians.items()
        },
    }


def _streaming_markdown(stream):
    def decoded(family, name):
        ratio = stream["over_decoded"][family].get(name)
        return "–" if ratio is None else f"**{ratio:.2f}x**"

    rows = "".join(
        f"| {family} | {name} | {stream['images_per_second'][family][name]:,.0f} "
        f"| **{ratio:.2f}x** | {decoded(family, name)} |\n"
        for family, per in stream["over_in_memory"].items()
        for name, ratio in per.items()
    )
    return (
        "\n## Streaming encode vs one in-process call\n\n"
        f"The same {stream['images']:,} MNIST-5k digits, batch "
        f"{stream['batch_size']}, as one array in memory (the one call) and "
        "streamed from an `.npy` or a folder of PNG files (decoding included); "
        "images/s, median of the same interleaved rounds. `/ in memory` is the "
        "ratio to the first route of its family: pixels already decoded, so "
        "for the PNG routes decoding is counted on their side only. "
        "`/ decode then call` counts the decoding on both sides: the baseline "
        "decodes every PNG into one array with the same reader, in parallel, "
        "then makes the in-memory call; this is the in-process call on the "
        "same files that the target (>= 0.9x) is against. "
        "The Keras routes return the same codes, the onnxruntime routes the "
        "same packed codes (checked). Model loading and imports are not "
        f"timed. Decoding one PNG with Pillow (`read_image`, one thread) takes "
        f"{stream['decode_microseconds_per_image']:.0f} µs: CPU time that "
        "inference, which already uses both cores, must share.\n\n"
        "| family | route | images/s | / in memory | / decode then call |\n"
        "|---|---|---|---|---|\n"
        f"{rows}" + _ceiling_markdown(stream)
    )


def _ceiling_markdown(stream):
    rows = "".join(
        f"| {family} | {PNG_ROUTE[family]} | {c['infer_cpu_microseconds']:.0f} "
        f"| {c['decode_cpu_microseconds']:.0f} | **{c['ceiling']:.2f}x** "
        f"| {c['in_memory_cores_busy']:.2f} | {c['ceiling_all_cores_free']:.2f}x "
        f"| **{c['measured']:.2f}x** "
        f"| {c['measured_over_ceiling']:.2f} |\n"
        for family, c in stream["cpu_ceiling"].items()
    )
    return (
        "\n## The CPU ceiling of the file routes\n\n"
        "Process CPU time (`time.process_time`, all threads) per image, medians "
        "of the same rounds: `infer` around the family's in-memory call "
        "(first row above), `decode` around decoding all the PNG files with the "
        "family's reader alone (Pillow `read_image` for onnxruntime, the "
        "tf.data folder reader of `keras-mlh encode` for Keras). When inference "
        "alone keeps every core busy, a route that must also decode cannot "
        "beat `infer / (infer + decode)` of the in-memory images/s: that is "
        "the ceiling. `measured` is the file route's `/ in memory` ratio above; "
        "`measured / ceiling` near 1 means decoding is already overlapped "
        "with inference as well as the cores allow. Where the in-memory call "
        "leaves cores idle (`cores busy`, its CPU seconds per image times its "
        "images/s, below the core count), the route can beat the ceiling: "
        "decoding then runs on the idle core, up to `ceiling, all cores "
        "free` = min(1, cores / (cores busy x (infer + decode) / infer)), "
        "which holds only if no other process wants those cores. The target (>= 0.9x) is "
        "unchanged and is read in the `/ decode then call` column above; "
        "against already-decoded pixels it is out of reach wherever the "
        "ceiling is below 0.9x. The machine is shared with other "
        "engineers' runs (see the load average): ratios, not images/s, are "
        "comparable.\n\n"
        "| family | file route | infer CPU µs/image | decode CPU µs/image "
        "| ceiling | cores busy in memory | ceiling, all cores free | measured "
        "| measured / ceiling |\n"
        "|---|---|---|---|---|---|---|---|---|\n"
        f"{rows}"
    )


if __name__ == "__main__":
    sys.exit(main())

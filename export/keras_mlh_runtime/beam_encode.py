"""Batch encoding on Apache Beam: image files -> sharded packed-code files.

    python -m keras_mlh_runtime.beam_encode --export DIR --images GLOB \\
        --output PREFIX [--num-shards N] [--debug] [Beam pipeline options]

Reads the files matching `GLOB` (any Beam file system: local, `gs://`,
`s3://`, ...), decodes them with Pillow (`keras_mlh_runtime.images`, the
pixels `keras-mlh encode` reads from a folder), runs the exported
`model.onnx` with Beam's `RunInference` (`OnnxModelHandlerNumpy`, keyed by
path) and writes `PREFIX-SSSSS-of-NNNNN.npz` shards, each with `codes`
(packed uint8 `(n, bits / 8)`, the ONNX graph's `packed` output), `paths`
(the matched file paths, sorted within the shard) and `bits`. A shard that
gets no image is not written. `keras-mlh index build PREFIX-*.npz db.index`
builds one index of all shards, with their paths.

Runs where the pipeline options say: `--runner DirectRunner` (the default,
in this process) or `PrismRunner` locally, `DataflowRunner`, `FlinkRunner`
or `SparkRunner` at scale (the export folder must then be on a file system
the workers can read). The workers need numpy, onnxruntime, onnx, pillow and
apache-beam (`pip install "keras-mlh-runtime[beam]"`), never TensorFlow or Keras.
"""

import argparse
import functools
import logging
import os
import sys
import uuid
import zlib

import numpy as np

from keras_mlh_runtime.code_files import write_npz_codes
from keras_mlh_runtime.contract import (
    METADATA_FILE,
    ONNX_FILE,
    check_fingerprint,
    check_session,
    parse_metadata,
)
from keras_mlh_runtime.errors import check_positive_int, first_line
from keras_mlh_runtime.images import color_mode, decode_image

_INSTALL = 'pip install "keras-mlh-runtime[beam]" (apache-beam, onnx, pillow)'
try:
    import apache_beam as beam
    from apache_beam.io import fileio
    from apache_beam.io.filesystems import FileSystems
    from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
    from apache_beam.ml.inference.onnx_inference import OnnxModelHandlerNumpy
    from apache_beam.options.pipeline_options import PipelineOptions
except ImportError as error:
    raise ImportError(
        f"keras_mlh_runtime.beam_encode needs Apache Beam ({error.name} is "
        f"missing): {_INSTALL}."
    ) from error

PROG = "python -m keras_mlh_runtime.beam_encode"
SHARD_PATTERN = "{prefix}-{shard:05d}-of-{num_shards:05d}.npz"


def read_export(export_dir):
    """The checked `metadata.json` and the `model.onnx` path of an export
    folder, on any Beam file system.

    Args:
        export_dir: the folder written by `keras_mlh.export.export_encoder`.

    Returns:
        `(metadata, onnx_path)`.

    Raises:
        ValueError: when `metadata.json` or `model.onnx` is missing, the
            metadata is invalid or has a channel count image files cannot
            give, or `model.onnx` is not the file the metadata vouches for.

    Example:
    >>> metadata, onnx_path = read_export("encoder")
    >>> metadata["bits"]
    32
    """
    meta_path = FileSystems.join(export_dir, METADATA_FILE)
    onnx_path = FileSystems.join(export_dir, ONNX_FILE)
    for path in (meta_path, onnx_path):
        if not FileSystems.exists(path):
            raise ValueError(
                f"{path!r} is missing: pass as --export the folder written by "
                "`keras-mlh export` (with its ONNX encoder)."
            )
    with FileSystems.open(meta_path) as f:
        metadata = parse_metadata(f.read(), meta_path)
    color_mode(metadata["input_shape"])
    # Before any worker parses it: a model.onnx of another export would
    # otherwise encode every image with the wrong weights.
    with FileSystems.open(onnx_path) as f:
        check_fingerprint(f.read(), metadata, export_dir)
    return metadata, onnx_path


def shard_of(path, num_shards):
    """The shard of an image path, the same in every process and machine
    (Python's `hash` of a string changes from process to process).

    Args:
        path: the image's path.
        num_shards: the number of shards.

    Returns:
        An int in `[0, num_shards)`.

    Example:
    >>> shard_of("images/0.png", 4)
    3
    """
    return zlib.crc32(path.encode("utf-8")) % num_shards


class PackedOnnxModelHandler(OnnxModelHandlerNumpy):
    """Beam's ONNX model handler for an exported keras-mlh encoder.

    Runs only the graph's `packed` output, on CPU unless `providers` says
    otherwise, and checks on load that the graph matches `metadata.json`.

    Args:
        onnx_path: the export's `model.onnx` (any Beam file system).
        metadata: its checked `metadata.json` (see `read_export`).
        providers: onnxruntime execution providers, in order of preference.
        **kwargs: further `OnnxModelHandlerNumpy` arguments (batch sizes).

    Example:
    >>> handler = KeyedModelHandler(PackedOnnxModelHandler(*read_export("encoder")[::-1]))
    """

    def __init__(
        self, onnx_path, metadata, providers=("CPUExecutionProvider",), **kwargs
    ):
        super().__init__(
            onnx_path,
            providers=list(providers),
            inference_fn=functools.partial(
                _packed_inference, input_name=metadata["input_name"]
            ),
            **kwargs,
        )
        self._metadata = metadata
        self._onnx_path = onnx_path

    def load_model(self):
        session = super().load_model()
        check_session(session, self._metadata, self._onnx_path)
        return session


def _packed_inference(session, batch, inference_args=None, input_name=None):
    """Beam's ONNX inference function: one call, only the `packed` output."""
    return session.run(["packed"], {input_name: np.stack(batch)})[0]


def _decode(readable_file, image_shape, resize_to=None):
    path = readable_file.metadata.path
    pixels = decode_image(
        readable_file.read(), image_shape, name=path, resize_to=resize_to
    )
    return path, pixels.astype(np.float32)


def _write_shard(shard, items, prefix, num_shards, bits):
    """Writes one shard under a temporary name and renames it over its name
    (one rename, never a delete first): a reader sees the earlier shard or
    this one, never half of one or none, and a retried bundle writes the
    same one."""
    items = sorted(items, key=lambda item: item[0])
    final = SHARD_PATTERN.format(prefix=prefix, shard=shard, num_shards=num_shards)
    folder, name = os.path.split(final)
    # Unique: a retried or speculative copy of the bundle may write at once.
    temp = FileSystems.join(folder or ".", f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        with FileSystems.create(temp) as f:
            # No ids: `index build` numbers the shards' codes in order.
            write_npz_codes(
                f,
                np.stack([code for _, code in items]).astype(np.uint8),
                paths=np.array([path for path, _ in items]),
            )
        FileSystems.rename([temp], [final])  # replaces: os.rename, GCS copy
    except BaseException:
        if FileSystems.exists(temp):
            FileSystems.delete([temp])
        raise
    return final


class EncodeImages(beam.PTransform):
    """Image files -> packed codes of an exported encoder, written as shards.

    Args:
        images: a glob of image files (any Beam file system).
        export_dir: the export folder (`model.onnx`, `metadata.json`).
        output: the shards' path prefix (`PREFIX-SSSSS-of-NNNNN.npz`).
        num_shards: how many shards to spread the codes over.
        batch_size: the largest batch one onnxruntime call gets.

    Returns:
        (applied to a pipeline) a `PCollection` of the written shards' paths.

    Example:
    >>> with beam.Pipeline() as pipeline:
    ...     pipeline | EncodeImages("photos/*.jpg", "encoder", "codes/photos")
    """

    def __init__(self, images, export_dir, output, num_shards=1, batch_size=256):
        super().__init__()
        self.images = images
        self.output = output
        self.num_shards = check_positive_int("num_shards", num_shards)
        self.batch_size = check_positive_int("batch_size", batch_size)
        self.metadata, self.onnx_path = read_export(export_dir)

    def expand(self, pipeline):
        image_shape = tuple(self.metadata["input_shape"])
        resize_to = self.metadata.get("resize_to")  # checked by parse_metadata
        num_shards, output, bits = self.num_shards, self.output, self.metadata["bits"]
        handler = KeyedModelHandler(
            PackedOnnxModelHandler(
                self.onnx_path, self.metadata, max_batch_size=self.batch_size
            )
        )
        return (
            pipeline
            | "MatchImages" >> fileio.MatchFiles(self.images)
            | "ReadImages" >> fileio.ReadMatches()
            | "DecodeImages"
            >> beam.Map(_decode, image_shape=image_shape, resize_to=resize_to)
            | "Encode" >> RunInference(handler)
            | "AssignShards"
            >> beam.MapTuple(
                lambda path, result: (
                    shard_of(path, num_shards),
                    (path, np.asarray(result.inference)),
                )
            )
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards"
            >> beam.MapTuple(
                lambda shard, items: _write_shard(
                    shard, items, output, num_shards, bits
                )
            )
        )


def _check_paths(images, output, overwrite=False):
    """Refuses a glob that matches nothing and, without `overwrite`, an
    output prefix that already has shards (a later `index build
    PREFIX-*.npz` would mix two runs). Returns the number of images and the
    earlier shards' paths."""
    matched = FileSystems.match([images])[0].metadata_list
    if not matched:
        raise ValueError(f"No file matches --images {images!r}; check the pattern.")
    earlier = [
        m.path for m in FileSystems.match([_shard_glob(output)])[0].metadata_list
    ]
    if earlier and not overwrite:
        raise ValueError(
            f"{earlier[0]!r} exists: shards of an earlier run; pass --overwrite to "
            "replace them, delete them, or choose another --output prefix."
        )
    return len(matched), earlier


def _shard_glob(output):
    return f"{output}-*-of-*.npz"


def _remove_replaced(earlier, output, num_shards):
    """Deletes the earlier run's shards that this run did not write over (a
    run with another shard count), once this run's shards are all in place."""
    written = {
        SHARD_PATTERN.format(prefix=output, shard=s, num_shards=num_shards)
        for s in range(num_shards)
    }
    stale = [path for path in earlier if path not in written]
    if stale:
        FileSystems.delete(stale)


def main(argv=None):
    """Runs the pipeline; returns the exit code (1 with a one-line error).

    Args:
        argv: the arguments after the program name; `None` reads `sys.argv`.
            Arguments this module does not know go to Beam's
            `PipelineOptions` (`--runner`, `--direct_num_workers`, ...).

    Returns:
        0 after printing how many images went into how many shards.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Encodes image files with an exported keras-mlh encoder on "
        "Apache Beam and writes sharded packed-code files for `keras-mlh index "
        "build`. Other options are Beam pipeline options (e.g. --runner).",
        # An abbreviation of one of ours must not swallow a Beam option.
        allow_abbrev=False,
    )
    parser.add_argument("--export", required=True, help="export folder (model.onnx)")
    parser.add_argument("--images", required=True, help="glob of image files")
    parser.add_argument("--output", required=True, help="prefix of the shard files")
    # Beam's own options are spelt with underscores: the same spelling of
    # ours must not go to PipelineOptions, which drops what it does not know
    # with only a log warning.
    parser.add_argument(
        "--num-shards", "--num_shards", type=int, default=1, help="default: 1"
    )
    parser.add_argument(
        "--batch-size", "--batch_size", type=int, default=256, help="default: 256"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the shards of an earlier run with this prefix (removed "
        "only once this run's shards are written)",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error"
    )
    args, beam_args = parser.parse_known_args(argv)
    if not args.debug:
        # Beam logs a failed element's error with its traceback, then raises
        # it here, where it is printed on one line.
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    try:
        count, earlier = _check_paths(args.images, args.output, args.overwrite)
        transform = EncodeImages(
            args.images, args.export, args.output, args.num_shards, args.batch_size
        )
        with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
            pipeline | "EncodeImages" >> transform  # noqa: B018 (applied for effect)
        _remove_replaced(earlier, args.output, transform.num_shards)
    except Exception as error:  # Beam re-raises workers' errors in its own types
        if args.debug:
            raise
        print(f"{PROG}: error: {first_line(error)}", file=sys.stderr)
        return 1
    shards = FileSystems.match([_shard_glob(args.output)])[0].metadata_list
    print(
        f"Encoded {count} images into {len(shards)} shard(s) of "
        f"{transform.metadata['bits']}-bit codes: {args.output}-*-of-"
        f"{args.num_shards:05d}.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Batch encoding on Apache Beam: image files -> sharded packed-code files.

    python -m keras_mlh_runtime.beam_encode --export DIR --images GLOB \\
        --output PREFIX [--num-shards N] [--overwrite] [Beam pipeline options]

Files matching `GLOB` (any Beam file system) are read as `images` reads
them and written as `PREFIX-SSSSS-of-NNNNN.npz` codes files (with their
`paths`) for `keras-mlh index build PREFIX-*.npz db.index`. Workers need
`pip install "keras-mlh-runtime[beam]"`, not TensorFlow or Keras.
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
from keras_mlh_runtime.contract import open_export
from keras_mlh_runtime.errors import check_positive_int, first_line
from keras_mlh_runtime.images import color_mode, read_image

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
        'missing): pip install "keras-mlh-runtime[beam]" (apache-beam, onnx, pillow).'
    ) from error

PROG = "python -m keras_mlh_runtime.beam_encode"
SHARD_PATTERN = "{prefix}-{shard:05d}-of-{num_shards:05d}.npz"


def _packed(session, batch, inference_args=None, name=None):
    return session.run(["packed"], {name: np.stack(batch)})[0]


def _decode(readable_file, image_shape, resize_to):
    path = readable_file.metadata.path
    pixels = read_image(path, image_shape, resize_to, data=readable_file.read())
    return path, pixels.astype(np.float32)


def _assign(path, result, num_shards=1):  # Beam: side inputs have defaults
    # The same shard on every machine (unlike Python's `hash` of a string).
    shard = zlib.crc32(path.encode("utf-8")) % num_shards
    return shard, (path, np.asarray(result.inference))


def _write_shard(shard, items, prefix=None, num_shards=1):
    """Writes one shard under a unique temporary name (a retried bundle may
    write at once), renamed over the shard: a reader sees one whole shard."""
    items = sorted(items, key=lambda item: item[0])
    final = SHARD_PATTERN.format(prefix=prefix, shard=shard, num_shards=num_shards)
    folder, name = os.path.split(final)
    temp = FileSystems.join(folder or ".", f".tmp-{uuid.uuid4().hex}-{name}")
    try:
        with FileSystems.create(temp) as f:
            # No ids: `index build` numbers the shards' codes in order.
            codes = np.stack([code for _, code in items]).astype(np.uint8)
            write_npz_codes(f, codes, paths=np.array([path for path, _ in items]))
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
        export_dir: the export folder.
        output: the shards' path prefix.
        num_shards: how many shards to spread the codes over.
        batch_size: the largest batch of one onnxruntime call.

    Returns:
        (applied) a `PCollection` of the written shards' paths.

    Example:
    >>> with beam.Pipeline() as pipeline:  # doctest: +SKIP
    ...     pipeline | EncodeImages("photos/*.jpg", "encoder", "codes/photos")
    """

    def __init__(self, images, export_dir, output, num_shards=1, batch_size=256):
        super().__init__()
        self.images, self.output = images, output
        self.num_shards = check_positive_int("num_shards", num_shards)
        self.batch_size = check_positive_int("batch_size", batch_size)
        # Before any worker starts.
        self.metadata, self.onnx_path, _ = open_export(
            export_dir, FileSystems.open, FileSystems.join
        )
        color_mode(self.metadata["input_shape"])

    def expand(self, pipeline):
        handler = OnnxModelHandlerNumpy(
            self.onnx_path,
            providers=["CPUExecutionProvider"],
            inference_fn=functools.partial(_packed, name=self.metadata["input_name"]),
            max_batch_size=self.batch_size,
        )
        shape, resize_to = self.metadata["input_shape"], self.metadata.get("resize_to")
        return (
            pipeline
            | "MatchImages" >> fileio.MatchFiles(self.images)
            | "ReadImages" >> fileio.ReadMatches()
            | "DecodeImages" >> beam.Map(_decode, shape, resize_to)
            | "Encode" >> RunInference(KeyedModelHandler(handler))
            | "AssignShards" >> beam.MapTuple(_assign, self.num_shards)
            | "GroupShards" >> beam.GroupByKey()
            | "WriteShards" >> beam.MapTuple(_write_shard, self.output, self.num_shards)
        )


def _matches(pattern):
    return [m.path for m in FileSystems.match([pattern])[0].metadata_list]


def main(argv=None):
    """Runs the pipeline; returns the exit code (1 with a one-line error).

    Args:
        argv: the arguments (`None`: `sys.argv`); those not ours go to Beam's
            `PipelineOptions`.

    Returns:
        The exit code.
    """
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n")[0] + " Other options go to Beam (--runner).",
        allow_abbrev=False,  # an abbreviation must not swallow a Beam option
    )
    parser.add_argument("--export", required=True, help="export folder (model.onnx)")
    parser.add_argument("--images", required=True, help="glob of image files")
    parser.add_argument("--output", required=True, help="prefix of the shard files")
    # Beam's spelling too: PipelineOptions would drop ours with a warning.
    parser.add_argument("--num-shards", "--num_shards", type=int, default=1)
    parser.add_argument("--batch-size", "--batch_size", type=int, default=256)
    parser.add_argument("--overwrite", action="store_true", help="replace shards")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args, beam_args = parser.parse_known_args(argv)
    if not args.debug:
        # Beam logs a failed element's traceback; it is printed on one line.
        logging.getLogger("apache_beam.runners.common").setLevel(logging.CRITICAL)
    shards = f"{args.output}-*-of-*.npz"
    try:
        count = len(_matches(args.images))
        if not count:
            raise ValueError(
                f"No file matches --images {args.images!r}; check the pattern."
            )
        earlier = _matches(shards)
        if earlier and not args.overwrite:
            # A later `index build PREFIX-*.npz` would mix two runs.
            raise ValueError(
                f"{earlier[0]!r} exists: shards of an earlier run; pass --overwrite "
                "to replace them, delete them, or choose another --output prefix."
            )
        transform = EncodeImages(
            args.images, args.export, args.output, args.num_shards, args.batch_size
        )
        with beam.Pipeline(options=PipelineOptions(beam_args)) as pipeline:
            pipeline | "EncodeImages" >> transform  # noqa: B018 (applied for effect)
        # The earlier run's shards this run did not write over (another count).
        ours = f"-of-{transform.num_shards:05d}.npz"
        if stale := [path for path in earlier if not path.endswith(ours)]:
            FileSystems.delete(stale)
    except Exception as error:  # Beam re-raises workers' errors in its own types
        if args.debug:
            raise
        print(f"{PROG}: error: {first_line(error)}", file=sys.stderr)
        return 1
    print(
        f"Encoded {count} images into {len(_matches(shards))} shard(s) of "
        f"{transform.metadata['bits']}-bit codes: {args.output}-*-of-"
        f"{args.num_shards:05d}.npz"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`HashEncoder`: an exported keras-mlh encoder run with onnxruntime."""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_mlh_runtime.contract import OUTPUT_NAMES, check_resize_to, open_export
from keras_mlh_runtime.errors import check_positive_int, validate_images
from keras_mlh_runtime.images import color_mode, read_image

_END = object()


def read_ahead(iterable, depth=2):
    """The items of `iterable` in order, computed up to `depth` ahead in a
    thread; its exception is raised at its item, and closing the generator
    stops the thread after its current item.

    Example:
    >>> list(read_ahead(x * x for x in range(4)))
    [0, 1, 4, 9]
    """
    depth = check_positive_int("depth", depth)

    def items():
        iterator = iter(iterable)
        # One worker: the iterator is advanced by one thread at a time.
        pool = ThreadPoolExecutor(1, thread_name_prefix="keras-mlh-read-ahead")
        try:
            pending = deque(pool.submit(next, iterator, _END) for _ in range(depth))
            while (item := pending.popleft().result()) is not _END:
                pending.append(pool.submit(next, iterator, _END))
                yield item
        finally:
            pool.shutdown(cancel_futures=True)

    return items()


class HashEncoder:
    """An exported keras-mlh encoder, run with onnxruntime (no TensorFlow).

    Args:
        session: an `onnxruntime.InferenceSession` of `model.onnx`.
        metadata: its `metadata.json`, checked against the session (`load`).

    Example:
    >>> encoder = HashEncoder.load("mnist_encoder")  # doctest: +SKIP
    >>> packed = encoder.encode(images)  # uint8 (n, bits / 8)  # doctest: +SKIP
    >>> index = encoder.build_index(database_images)  # doctest: +SKIP
    >>> distances, ids = encoder.search(query_images, index, k=10)  # doctest: +SKIP
    """

    def __init__(self, session, metadata):
        self.session = session
        self.metadata = metadata
        self.bits = int(metadata["bits"])
        self.input_name = metadata["input_name"]
        self.input_shape = tuple(int(d) for d in metadata["input_shape"])
        self.resize_to = check_resize_to(metadata.get("resize_to"), self.input_shape)

    @classmethod
    def load(cls, artifact_dir, providers=("CPUExecutionProvider",), threads=None):
        """Opens the folder written by `keras_mlh.export.export_encoder`:
        `model.onnx` must be the file its `metadata.json` vouches for (sha256)
        and match it.

        Args:
            artifact_dir: folder with `model.onnx` and `metadata.json`.
            providers: onnxruntime execution providers, preferred first.
            threads: onnxruntime intra-op threads (`None`: its default).

        Returns:
            A `HashEncoder`.
        """
        threads = check_positive_int("threads", threads, allow_none=True)
        artifact_dir = os.fspath(artifact_dir)
        if not os.path.isdir(artifact_dir):
            raise ValueError(
                f"Export folder not found: {artifact_dir!r}. Pass the folder "
                "written by keras_mlh.export.export_encoder."
            )
        metadata, _, session = open_export(
            artifact_dir, lambda p: open(p, "rb"), os.path.join, providers, threads
        )
        return cls(session, metadata)

    def _validated(self, images):
        """Images checked against `metadata.json`, not yet float32."""
        array = np.asarray(images)
        if array.shape == self.input_shape:
            array = array[None]  # one image
        if array.ndim == 1 and array.size == 0:
            array = array.reshape(0, *self.input_shape)  # [] is an empty batch
        return validate_images(array, self.input_shape, any_int=False)

    def encode(self, images, batch_size=256, output="packed"):
        """Encodes images.

        Args:
            images: `(n, *input_shape)` uint8 or float pixels in [0, 255]
                (`(n, height, width)` for one channel; one image alone).
            batch_size: images per onnxruntime call.
            output: `"packed"` (uint8 `(n, bits / 8)`), `"codes"` (int8 ±1
                `(n, bits)`) or `"embedding"` (float32 `(n, bits)`).

        Returns:
            The requested output for all images.
        """
        batch_size = self._check_options(output, batch_size)
        images = self._validated(images)
        batches = (
            images[i : i + batch_size].astype(np.float32, copy=False)
            for i in range(0, len(images), batch_size)
        )
        # A float32 copy per batch, not of all images (4x uint8's memory).
        return self._run(batches, output, ahead=len(images) > batch_size)

    def encode_files(self, paths, batch_size=256, output="packed", workers=None):
        """Encodes image files, decoding the next batch while this one runs.

        Files are read by `keras_mlh_runtime.images.read_image` (with
        `metadata.json`'s `resize_to`), as training reads them.

        Args:
            paths: image file paths; codes come back in this order.
            batch_size, output: as in `encode`.
            workers: threads decoding files; `None` is the CPU count.

        Returns:
            The requested output, one row per path.
        """
        batch_size = self._check_options(output, batch_size)
        workers = check_positive_int("workers", workers, allow_none=True)
        if isinstance(paths, (str, bytes, os.PathLike)):
            # A string is iterable: its characters would be read as paths.
            raise ValueError(
                f"`paths` must be a list of image files, not one path: pass "
                f"[{os.fspath(paths)!r}]."
            )
        paths = [os.fspath(p) for p in paths]
        if not paths:
            raise ValueError("`paths` is empty: pass at least one image file.")
        color_mode(self.input_shape)  # a clear error before any file is read

        def read(path):
            return read_image(path, self.input_shape, resize_to=self.resize_to)

        with ThreadPoolExecutor(workers or os.cpu_count() or 1) as pool:
            chunks = (
                paths[i : i + batch_size] for i in range(0, len(paths), batch_size)
            )
            batches = (
                np.stack(list(pool.map(read, c))).astype(np.float32) for c in chunks
            )
            return self._run(batches, output)

    def _check_options(self, output, batch_size):
        if output not in OUTPUT_NAMES:
            raise ValueError(
                f"`output` must be one of {OUTPUT_NAMES}. Received: {output!r}"
            )
        return check_positive_int("batch_size", batch_size)

    def _run(self, batches, output, ahead=True):
        """One onnxruntime call per float32 batch, each made a batch ahead."""
        batches = read_ahead(batches) if ahead else batches
        try:
            return np.concatenate(
                [self.session.run([output], {self.input_name: b})[0] for b in batches]
            )
        finally:
            # Now, not when a traceback holding this frame is freed.
            batches.close()

    def build_index(
        self, images=None, packed=None, ids=None, paths=None, kind="flat", **options
    ):
        """A `HammingIndex` of images (encoded here) or of their codes.

        Args:
            images: images to encode and index, or
            packed: their codes (packed uint8 or ±1).
            ids, paths: see `HammingIndex.add`.
            kind, **options: see `HammingIndex`.

        Returns:
            The `HammingIndex`, of this encoder's `bits`.
        """
        from keras_mlh_runtime.index import HammingIndex

        if (images is None) == (packed is None):
            raise ValueError("Pass exactly one of `images` or `packed`.")
        index = HammingIndex(self.bits, kind=kind, **options)
        index.add(self.encode(images) if packed is None else packed, ids, paths)
        return index

    def search(self, images, index, k=10):
        """Encodes query images and searches them in `index`.

        Args:
            images: query images, as `encode` takes them.
            index: a `HammingIndex` of codes of this encoder's length.
            k: number of neighbours per query.

        Returns:
            `(distances, ids)`: int32 Hamming distances and int64 ids,
            `(n, k)`, nearest first.
        """
        if getattr(index, "bits", None) != self.bits:
            raise ValueError(
                f"`index` must be a HammingIndex of {self.bits}-bit codes (this "
                f"encoder's). Received: {getattr(index, 'bits', type(index).__name__)}"
            )
        return index.search(self.encode(images), k)

"""`HashEncoder`: an exported keras-mlh encoder run with onnxruntime, and
`read_ahead`, which prepares its next batch beside inference."""

import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_mlh_runtime.contract import (
    OUTPUT_NAMES,
    check_resize_to,
    check_session,
    read_export,
)
from keras_mlh_runtime.errors import check_positive_int, first_line, validate_images
from keras_mlh_runtime.images import color_mode, read_image

_END = object()


def read_ahead(iterable, depth=2):
    """Yields the items of `iterable` in order, computed ahead in a thread.

    Decoding (Pillow, numpy) and inference (onnxruntime, TensorFlow) release
    the GIL, so a thread a few items ahead keeps the model busy. At most
    `depth` computed items wait; an exception of the iterable is raised at
    its item; closing the generator stops the thread after its current item.

    Args:
        iterable: any iterable, iterated in one background thread.
        depth: how many items may wait, computed, for the consumer.

    Returns:
        A generator of the same items in the same order.

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

    Open the folder written by `keras_mlh.export.export_encoder` (with
    `model.onnx` and `metadata.json`) with `HashEncoder.load`.

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
        # Set for an encoder trained on resized-then-cropped files.
        self.resize_to = check_resize_to(metadata.get("resize_to"), self.input_shape)

    @classmethod
    def load(cls, artifact_dir, providers=("CPUExecutionProvider",), threads=None):
        """Opens an export folder and checks it.

        `model.onnx` must be the file `metadata.json` was written with (its
        sha256) and its graph must match the metadata.

        Args:
            artifact_dir: folder with `model.onnx` and `metadata.json`.
            providers: onnxruntime execution providers, in order of preference.
            threads: onnxruntime intra-op threads; `None` is onnxruntime's
                default (one per physical core); `1` suits a busy CPU.

        Returns:
            A `HashEncoder`.

        Example:
        >>> encoder = HashEncoder.load("mnist_encoder")  # doctest: +SKIP
        >>> encoder.bits, encoder.input_shape  # doctest: +SKIP
        (32, (28, 28, 1))
        """
        import onnxruntime as ort

        threads = check_positive_int("threads", threads, allow_none=True)
        artifact_dir = os.fspath(artifact_dir)
        if not os.path.isdir(artifact_dir):
            raise ValueError(
                f"Export folder not found: {artifact_dir!r}. Pass the folder "
                "written by keras_mlh.export.export_encoder."
            )
        metadata, onnx_path, data = read_export(
            artifact_dir, lambda path: open(path, "rb"), os.path.join
        )
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads or 0  # 0: the default
            # onnxruntime parses the bytes that were checked, not the file again.
            session = ort.InferenceSession(data, options, providers=list(providers))
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(
                f"{onnx_path!r} is corrupt or unreadable ({first_line(error)}); "
                "export the model again with keras_mlh.export.export_encoder."
            ) from None
        return cls(session, check_session(session, metadata, onnx_path))

    def check_images(self, images):
        """Checks images against `metadata.json` and returns them as float32.

        Args:
            images: `(n, *input_shape)` uint8 or float pixels in [0, 255]; one
                image of shape `input_shape` is a batch of one, `(n, height,
                width)` single-channel images.

        Returns:
            float32 array `(n, *input_shape)`.

        Example:
        >>> encoder.check_images(np.zeros((2, 28, 28, 1), np.uint8)).dtype  # doctest: +SKIP
        dtype('float32')
        """
        return self._validated(images).astype(np.float32, copy=False)

    def _validated(self, images):
        """`check_images` without the float32 copy (made per batch)."""
        array = np.asarray(images)
        if array.dtype != np.uint8 and array.dtype.kind != "f":
            raise ValueError(
                "`images` must be uint8 or float (float32) pixel values in "
                f"[0, 255], shape (batch, {', '.join(map(str, self.input_shape))}); "
                f"convert them, e.g. images.astype(np.float32). "
                f"Received: dtype={array.dtype}"
            )
        if array.shape == self.input_shape:
            array = array[None]  # one image
        if array.ndim == 1 and array.size == 0:
            array = array.reshape(0, *self.input_shape)  # [] is an empty batch
        return validate_images(array, self.input_shape, name="images")

    def encode(self, images, batch_size=256, output="packed"):
        """Encodes images.

        Args:
            images: `(n, *input_shape)` uint8 or float pixels in [0, 255]; see
                `check_images`.
            batch_size: images per onnxruntime call.
            output: `"packed"` (uint8 `(n, bits / 8)`), `"codes"` (int8 ±1
                `(n, bits)`) or `"embedding"` (float32 `(n, bits)`).

        Returns:
            The requested output for all images.

        Example:
        >>> encoder.encode(images).shape  # 32-bit codes  # doctest: +SKIP
        (1000, 4)
        """
        batch_size = self._check_options(output, batch_size)
        images = self._validated(images)
        batches = (
            images[i : i + batch_size].astype(np.float32, copy=False)
            for i in range(0, len(images), batch_size)
        )
        if len(images) > batch_size:
            # Each batch's float32 copy is made a batch ahead, beside
            # inference, not one copy of all images (4x uint8's memory).
            batches = read_ahead(batches)
        return self._run(batches, output)

    def encode_files(self, paths, batch_size=256, output="packed", workers=None):
        """Encodes image files, decoding the next batch while this one runs.

        Files are read as `keras_mlh_runtime.images.read_image` reads them
        (with `metadata.json`'s `resize_to`): the pixels `keras-mlh encode`
        reads from a folder. At most two decoded batches wait in memory.

        Args:
            paths: image file paths; codes come back in this order.
            batch_size: images per onnxruntime call.
            output: `"packed"`, `"codes"` or `"embedding"`, as in `encode`.
            workers: threads decoding files; `None` is the CPU count.

        Returns:
            The requested output, one row per path.

        Example:
        >>> encoder.encode_files(["a.png", "b.png"]).shape  # doctest: +SKIP
        (2, 4)
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
            batches = read_ahead(
                np.stack(list(pool.map(read, paths[i : i + batch_size]))).astype(
                    np.float32
                )
                for i in range(0, len(paths), batch_size)
            )
            return self._run(batches, output)

    def _check_options(self, output, batch_size):
        if output not in OUTPUT_NAMES:
            raise ValueError(
                f"`output` must be one of {OUTPUT_NAMES}. Received: {output!r}"
            )
        return check_positive_int("batch_size", batch_size)

    def _run(self, batches, output):
        """One onnxruntime call per float32 batch, concatenated in order."""
        try:
            parts = [
                self.session.run([output], {self.input_name: b})[0] for b in batches
            ]
        finally:
            # On an error, stop a read-ahead thread now, not when the
            # traceback (which holds this frame) is freed.
            getattr(batches, "close", lambda: None)()
        return np.concatenate(parts)

    def build_index(
        self, images=None, packed=None, ids=None, paths=None, kind="flat", **options
    ):
        """A `HammingIndex` of images (encoded here) or of their codes.

        Args:
            images: images to encode and index.
            packed: already encoded codes (packed uint8 or ±1) instead.
            ids: int64-compatible ids of the items; default 0..n-1.
            paths: optional file path of each item, kept in the index.
            kind: `"flat"` (exact), `"hnsw"` or `"ivf"`.
            **options: further `HammingIndex` arguments (`nlist`, ...).

        Returns:
            The `HammingIndex`, of this encoder's `bits`.

        Example:
        >>> index = encoder.build_index(database_images, ids=database_ids)  # doctest: +SKIP
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
            images: query images, see `check_images`.
            index: a `HammingIndex` of codes of this encoder's length.
            k: number of neighbours per query.

        Returns:
            `(distances, ids)`: int32 Hamming distances and int64 ids,
            `(n, k)`, nearest first.

        Example:
        >>> distances, ids = encoder.search(query_images, index, k=10)  # doctest: +SKIP
        """
        if getattr(index, "bits", None) != self.bits:
            raise ValueError(
                f"`index` must be a HammingIndex of {self.bits}-bit codes (this "
                f"encoder's). Received: {getattr(index, 'bits', type(index).__name__)}"
            )
        return index.search(self.encode(images), k)

"""keras-mlh-runtime: exported keras-mlh encoders served without TensorFlow.

Its own distribution (`pip install ./export`; numpy, onnxruntime and
faiss-cpu, plus Pillow with the `images` extra and Apache Beam with `beam`):
it never imports TensorFlow, Keras or keras-mlh. It holds what serving
needs; keras-mlh imports these modules where training follows the same rule:

- `codes`: ±1 codes, bits and packed bytes, and their bit order;
- `pixels`, `errors`: the checks of images and arguments;
- `contract`: the export folder's files, graph outputs, dtypes and
  `metadata.json` schema;
- `index`: `HammingIndex`, faiss Hamming search, saved as one checked file;
- `files`: atomic writes (a crash never leaves a half-written file);
- `encoder`: `HashEncoder`, the exported ONNX encoder on onnxruntime;
  `images` reads image files with Pillow, `beam_encode` encodes them on
  Apache Beam.

Example:
>>> from keras_mlh_runtime import HashEncoder  # doctest: +SKIP
>>> encoder = HashEncoder.load("mnist_encoder")  # doctest: +SKIP
>>> distances, ids = encoder.search(queries, encoder.build_index(database), k=10)  # doctest: +SKIP
"""

from keras_mlh_runtime.encoder import HashEncoder
from keras_mlh_runtime.version import __version__ as __version__

__all__ = ["HammingIndex", "HashEncoder", "__version__"]


def __getattr__(name):
    # faiss loads with the index, not with every import of the runtime.
    if name == "HammingIndex":
        from keras_mlh_runtime.index import HammingIndex

        return HammingIndex
    raise AttributeError(f"module 'keras_mlh_runtime' has no attribute {name!r}")

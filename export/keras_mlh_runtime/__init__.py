"""keras-mlh-runtime: exported keras-mlh encoders served without TensorFlow.

Its own distribution (`pip install ./export`: numpy, onnxruntime, faiss-cpu;
Pillow with the `images` extra, Apache Beam with `beam`); it never imports
TensorFlow, Keras or keras-mlh. Start with `HashEncoder` and `HammingIndex`.
"""

from keras_mlh_runtime.encoder import HashEncoder

__version__ = "0.1.0"
__all__ = ["HammingIndex", "HashEncoder", "__version__"]


def __getattr__(name):
    # faiss loads with the index, not with every import of the runtime.
    if name == "HammingIndex":
        from keras_mlh_runtime.index import HammingIndex

        return HammingIndex
    raise AttributeError(f"module 'keras_mlh_runtime' has no attribute {name!r}")

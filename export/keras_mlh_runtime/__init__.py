"""keras-mlh's deployment runtime: exported encoders without TensorFlow.

Needs numpy and onnxruntime to encode, and faiss-cpu to search; it never
imports TensorFlow or Keras. Install it on a serving machine with
`pip install --no-deps keras-mlh` plus `pip install numpy onnxruntime faiss-cpu`
(and pillow for `HashEncoder.encode_files`). `keras_mlh_runtime.beam_encode`
encodes image files on Apache Beam (the `beam` extra).

Example:
>>> from keras_mlh_runtime import HashEncoder  # doctest: +SKIP
>>> encoder = HashEncoder.load("mnist_encoder")  # doctest: +SKIP
>>> distances, ids = encoder.search(queries, encoder.build_index(database), k=10)  # doctest: +SKIP
"""

from keras_mlh_runtime.encoder import HashEncoder

__all__ = ["HashEncoder"]

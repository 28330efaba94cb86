"""Runs Keras's exporter under TensorFlow for a model of another backend.

What `Model.export` cannot write on JAX or PyTorch (see
`keras_mlh.export.exporter.KERAS_FORMATS`) is exported from the model's
`.keras` file (the same on every backend) in a fresh process with
`KERAS_BACKEND=tensorflow`:
`python -m keras_mlh.export.tensorflow_worker MODEL.keras FOLDER OPSET FORMAT...`.
The calling process finishes and validates the files against its own model.
A `ValueError` is reported as the last line of stderr and exit status 2.
"""

import os
import sys

# The worker's own backend, whatever the parent process had.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ERROR_STATUS = 2


def main(argv=None):
    model_path, folder, opset, *formats = sys.argv[1:] if argv is None else argv
    from keras_mlh.export.artifacts import keras_export
    from keras_mlh.models import load_model

    try:
        keras_export(load_model(model_path), folder, formats, int(opset))
    except ValueError as error:
        print(f"ValueError: {error}", file=sys.stderr)
        return ERROR_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())

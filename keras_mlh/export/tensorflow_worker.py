"""Runs `export_encoder` under TensorFlow for a model trained on JAX or torch.

SavedModel and tf2onnx need TensorFlow graphs, so `export_encoder` on another
Keras backend saves the model as `.keras` (backend-independent), and runs this
module in a fresh process with `KERAS_BACKEND=tensorflow`:
`python -m keras_mlh.export.tensorflow_worker request.json`. The request holds
`export_encoder`'s arguments, `sample_images` as the path of a `.npy` file.
A `ValueError` is reported as one JSON line on stderr and exit status 2.
"""

import json
import os
import sys

# The worker's own backend, whatever the parent process had.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ERROR_STATUS = 2


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0]) as file:
        request = json.load(file)
    import numpy as np

    from keras_mlh.export.exporter import export_encoder

    images = request.pop("sample_images")
    try:
        export_encoder(
            request.pop("model"),
            sample_images=None if images is None else np.load(images),
            **request,
        )
    except ValueError as error:
        report = {"type": type(error).__name__, "message": str(error)}
        print(json.dumps(report), file=sys.stderr)
        return ERROR_STATUS
    return 0


if __name__ == "__main__":
    sys.exit(main())

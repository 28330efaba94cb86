"""`python -m keras_mlh.export.tensorflow_worker MODEL.keras FOLDER OPSET FORMAT...`

`keras_export` of a `.keras` file, run with `KERAS_BACKEND=tensorflow` for the
formats `Model.export` cannot write on the caller's backend (`artifacts`).
"""

import sys

from keras_mlh.export.artifacts import keras_export
from keras_mlh.models import load_model

if __name__ == "__main__":
    model_path, folder, opset, *formats = sys.argv[1:]
    keras_export(load_model(model_path), folder, formats, int(opset))

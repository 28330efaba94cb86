"""Loading saved MLH models: `load_model`.

The `.keras` file is checked (`keras_mlh.files.check_model_file`) before
Keras reads it, so a wrong path fails fast with a message that says what
to do; the loaded model must be a `keras_mlh.MLH`.
"""

import keras

from keras_mlh.files import check_model_file
from keras_mlh.models.mlh import MLH
from keras_mlh_runtime.errors import first_line


def load_model(path):
    """Loads a `.keras` file and checks that it holds an MLH model.

    Args:
        path: path of a `.keras` file saved with `model.save(...)`.

    Returns:
        The `keras_mlh.MLH` model (not compiled).

    Raises:
        ValueError: for a missing file, a file that is not a Keras model, or
            a Keras model that is not an MLH model.

    Example:
    >>> model = keras_mlh.MLH(num_classes=10, bits=32)
    >>> model.encode(np.zeros((2, 28, 28, 1), np.uint8)).shape
    (2, 32)
    >>> model.save("mlh.keras")
    >>> keras_mlh.models.load_model("mlh.keras").bits
    32
    """
    return load_checked_model(check_model_file(path))


def load_checked_model(path):
    """`load_model` for a path that `check_model_file` has already passed.

    For callers that check the file once up front, before slow work (the
    command line); see `load_model`.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras_mlh.MLH` model (not compiled).
    """
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as error:  # Keras raises many types for a bad archive.
        raise ValueError(
            f"Could not load {path!r} as a Keras model: {first_line(error)}"
        ) from None
    if not isinstance(model, MLH):
        raise ValueError(
            f"{path!r} holds a {type(model).__name__}, not a keras_mlh.MLH model; "
            "only MLH models can be exported as hash encoders."
        )
    return model

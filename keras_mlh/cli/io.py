"""The command line's model loading, quiet imports and array writers.

Models are checked before TensorFlow is imported (a missing or broken model
file fails in a fraction of a second). Images and codes files are read by
`keras_mlh.encoding` and `keras_mlh_runtime.code_files`; outputs are written
through `keras_mlh.files` by the commands themselves.
"""

import importlib
import os
import sys
import tempfile

from keras_mlh.cli.errors import CLIError
from keras_mlh.encoding import MODEL_FIX
from keras_mlh.files import check_model_file


def require_images(path, what="Images"):
    """Raises a `CLIError` unless the images `path` (a file or folder) exist.

    Args:
        path: the `.npy`, `.npz` or folder of images.
        what: what the images are, for the message (e.g. "Query images").
    """
    if not os.path.exists(path):
        raise CLIError(f"{what} not found: {path!r}.")


def require_model(path):
    """Checks a model file without importing TensorFlow, so errors come fast.

    Args:
        path: the `.keras` file.
    """
    check_model_file(path, fix=MODEL_FIX)


# TensorFlow's start-up lines (twice: two of its libraries log them). They
# come from C++ before absl's logging is set up, so TF_CPP_MIN_LOG_LEVEL
# does not hide them; TF_ENABLE_ONEDNN_OPTS=0 would, but it turns oneDNN off.
STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
)
# `main` sets it for --debug: the start-up lines are shown then.
show_startup_logs = False


def quiet_tensorflow(tensorflow=False):
    """Imports Keras (and its TensorFlow) with the start-up lines left out.

    Call it before the first import of Keras or TensorFlow: the lines are
    written by C++ to file descriptor 2 while the libraries load, so they
    are caught there and every other line is passed on to stderr. Later
    calls, and calls with `show_startup_logs` set (`--debug`), only import.

    Args:
        tensorflow: import TensorFlow too, whatever the Keras backend (the
            exporter needs it).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # info and warnings
    import_quietly(["keras", "tensorflow"] if tensorflow else ["keras"])


def import_quietly(modules):
    """Imports `modules`, leaving out the `STARTUP_NOISE` lines they log.

    Args:
        modules: module names, imported in order.
    """
    if show_startup_logs or all(m in sys.modules for m in modules):
        for module in modules:
            importlib.import_module(module)
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            for module in modules:
                importlib.import_module(module)
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            rest = [line for line in lines if not any(n in line for n in STARTUP_NOISE)]
            sys.stderr.write("".join(rest))
            sys.stderr.flush()


def load_model(path):
    """Loads an MLH model whose file `require_model` has checked.

    Commands call `require_model` once, first, so that a wrong path fails
    before any slow work; the file is not checked again here.

    Args:
        path: the `.keras` file.

    Returns:
        The `keras_mlh.MLH` model.
    """
    quiet_tensorflow()
    from keras_mlh.models.loading import load_checked_model

    return load_checked_model(path)

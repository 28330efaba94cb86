"""`import keras_mlh` registers its serializable classes with Keras.

Each check runs in a fresh Python: in the test process the classes are
registered already by whatever imported them first.
"""

import subprocess
import sys
import textwrap

import pytest


def _fresh(code, *args):
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.split()


@pytest.fixture(scope="module")
def saved_model(mnist_mlh, tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "model.keras"
    mnist_mlh.save(path)
    return path


@pytest.mark.parametrize(
    "imports",
    ["import keras, keras_mlh", "import keras_mlh, keras"],
    ids=["keras-first", "keras_mlh-first"],
)
def test_load_model_in_a_fresh_process(saved_model, imports):
    out = _fresh(
        f"""
        import sys
        {imports}
        model = keras.saving.load_model(sys.argv[1])
        print(type(model).__name__, model.bits, model.mode)
        """,
        saved_model,
    )
    assert out == ["MLH", "32", "mlh"]


def test_every_serializable_class_is_registered_in_a_fresh_process():
    import keras

    import keras_mlh.layers
    import keras_mlh.losses
    import keras_mlh.models  # noqa: F401

    everything = sorted(
        name
        for name in keras.saving.get_custom_objects()
        if name.startswith("keras_mlh>")
    )
    out = _fresh(
        """
        import keras, keras_mlh
        print(*sorted(n for n in keras.saving.get_custom_objects()
                      if n.startswith("keras_mlh>")))
        """
    )
    assert len(everything) >= 8 and out == everything


def test_import_keras_mlh_alone_loads_no_keras():
    """The registration waits for Keras: the TF-free parts stay light."""
    out = _fresh(
        """
        import sys, keras_mlh, keras_mlh.metrics, keras_mlh.index, keras_mlh.codes
        print("keras" in sys.modules, "tensorflow" in sys.modules)
        """
    )
    assert out == ["False", "False"]

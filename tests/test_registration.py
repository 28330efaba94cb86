"""keras_mlh's serializable classes register with Keras where they are defined.

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
    "load",
    [
        # Keras first: `import keras_mlh` imports the classes at once.
        "import keras, keras_mlh; model = keras.saving.load_model(sys.argv[1])",
        # Either order: keras_mlh's loader imports them itself.
        "import keras_mlh, keras; model = keras_mlh.load_model(sys.argv[1])",
        # Importing a class registers it where it is defined.
        "from keras_mlh import MLH; import keras; "
        "model = keras.saving.load_model(sys.argv[1])",
    ],
    ids=["keras-first", "keras_mlh.load_model", "class-imported"],
)
def test_load_model_in_a_fresh_process(saved_model, load):
    out = _fresh(
        f"""
        import sys
        {load}
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
    """No Keras, no import hook: the TF-free parts stay light and plain."""
    out = _fresh(
        """
        import sys
        finders = list(sys.meta_path)
        import keras_mlh, keras_mlh.metrics
        keras_mlh.HammingIndex, keras_mlh.pack_codes
        print("keras" in sys.modules, "tensorflow" in sys.modules,
              sys.meta_path == finders)
        """
    )
    assert out == ["False", "False", "True"]

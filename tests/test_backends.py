"""MLH on the current Keras backend (scripts/test.sh runs this file on
TensorFlow, JAX and PyTorch), and the cross-backend guarantees: a `.keras`
file gives the same codes under TensorFlow, and export works from any backend.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from helpers import check_onnx_graph, run_python

import keras_mlh
from keras_mlh import MLH
from keras_mlh.backends import check_keras_backend

BACKEND = keras.backend.backend()
ON_TENSORFLOW = BACKEND == "tensorflow"


def _digits(n=64, size=16, classes=4, seed=0):
    """Images whose brightness follows the class: learnable in a few steps."""
    y = np.arange(n) % classes
    noise = np.random.default_rng(seed).integers(0, 60, (n, size, size, 1))
    return (noise + 60 * y[:, None, None, None]).astype("uint8"), y


# MLH (both branches, MoH, all three terms) and a one-branch baseline with a
# plain hash layer; tests/test_mlh.py trains every mode on TensorFlow.
@pytest.mark.parametrize("mode", ["mlh", "pairwise"])
def test_fit_on_this_backend_lowers_the_loss_in_every_mode(mode):
    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = MLH(num_classes=4, bits=8, mode=mode)
    model.compile()
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], history.history
    names = {"loss", *model.objective.term_names, "bit_balance", "quantization_error"}
    assert set(history.history) == names
    codes = model.encode(x[:4])
    assert codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}


# Two SGD steps of MLH (Adam's first step is about lr * sign(g), blind to the
# gradient's scale; a second step catches gradients carried over from the
# first) from the start weights saved in argv[1], on the batch in argv[2];
# writes the weights after the steps and the logs to argv[3].
TWO_STEPS = """
import sys, numpy as np, keras, keras_mlh
start, batch = np.load(sys.argv[1]), np.load(sys.argv[2])
model = keras_mlh.MLH(num_classes=4, bits=8)
model.compile(optimizer=keras.optimizers.SGD(0.5))
model.build((None, 16, 16, 1))
model.set_weights([start[f"w{i}"] for i in range(len(start.files))])
logs = model.fit(batch["x"], batch["y"], batch_size=32, shuffle=False, verbose=0)
after = {f"w{i}": w for i, w in enumerate(model.get_weights())}
logs = {k: np.array(v[0]) for k, v in logs.history.items()}
np.savez(sys.argv[3], **after, **{"log_" + k: v for k, v in logs.items()})
"""


def _two_steps(backend, *paths, monkeypatch):
    if backend == BACKEND:  # in this process: the import and compile are paid
        with monkeypatch.context() as patched:
            patched.setattr(sys, "argv", ["-c", *map(str, paths)])
            exec(TWO_STEPS, {})
    else:
        run_python(TWO_STEPS, *paths, backend=backend, timeout=300)
    return np.load(paths[-1])


@pytest.mark.skipif(ON_TENSORFLOW, reason="compares another backend with TensorFlow")
def test_train_steps_here_are_the_tensorflow_steps_from_the_same_start(
    tmp_path, monkeypatch
):
    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 1))
    start = {f"w{i}": w for i, w in enumerate(model.get_weights())}
    np.savez(tmp_path / "start.npz", **start)
    np.savez(tmp_path / "batch.npz", x=x, y=y)
    paths = (tmp_path / "start.npz", tmp_path / "batch.npz")
    here = _two_steps(BACKEND, *paths, tmp_path / "here.npz", monkeypatch=monkeypatch)
    tensorflow = _two_steps(
        "tensorflow", *paths, tmp_path / "tensorflow.npz", monkeypatch=monkeypatch
    )
    assert sorted(here.files) == sorted(tensorflow.files)
    moved = max(np.abs(here[k] - start[k]).max() for k in start)
    assert moved > 1e-2  # the steps did something
    for name in here.files:
        # float32 kernels of two backends: a few 1e-6 apart, except where max
        # pooling meets tied maxima (the digits' flat background): each
        # backend routes that gradient to another position, a few 1e-4 on JAX.
        # A wrong loss weight or term moves weights by 1e-2 and more.
        np.testing.assert_allclose(
            here[name], tensorflow[name], atol=1e-3, err_msg=name
        )
    for name in ("log_center_loss", "log_pairwise_loss", "log_mutual_loss"):
        assert name in here.files


# Loads the .keras file argv[1] and encodes the images in argv[2]; then trains
# a model of its own and saves it to argv[3]. Prints the codes and embeddings
# of both, one JSON line each (one TensorFlow process: its import is slow).
UNDER_TENSORFLOW = """
import json, sys, numpy as np, keras, keras_mlh, keras_mlh.models
images = np.load(sys.argv[2])
keras.utils.set_random_seed(0)
trained = keras_mlh.MLH(num_classes=4, bits=8)
trained.compile()
trained.fit(images, np.arange(len(images)) % 4, batch_size=16, epochs=1, verbose=0)
trained.save(sys.argv[3])
for model in (keras.saving.load_model(sys.argv[1]), trained):
    print(json.dumps(model.encode(images).tolist()))
    print(json.dumps(model.embed(images).tolist()))
"""


@pytest.mark.skipif(ON_TENSORFLOW, reason="compares another backend with TensorFlow")
def test_keras_file_gives_the_same_codes_under_tensorflow(tmp_path):
    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = MLH(num_classes=4, bits=8, top_k=2)
    model.compile()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    model.save(tmp_path / "here.keras")
    np.save(tmp_path / "x.npy", x)
    paths = (tmp_path / "here.keras", tmp_path / "x.npy", tmp_path / "tf.keras")
    result = run_python(UNDER_TENSORFLOW, *paths, backend="tensorflow", timeout=300)
    codes, embedding, tf_codes, tf_embedding = (
        np.array(json.loads(line)) for line in result.stdout.strip().splitlines()[-4:]
    )
    # Saved here, loaded under TensorFlow ...
    np.testing.assert_allclose(embedding, model.embed(x), atol=1e-5)
    np.testing.assert_array_equal(codes, model.encode(x))
    # ... and trained and saved under TensorFlow, loaded here.
    again = keras.saving.load_model(tmp_path / "tf.keras")
    np.testing.assert_allclose(again.embed(x), tf_embedding, atol=1e-5)
    np.testing.assert_array_equal(again.encode(x), tf_codes)


@pytest.mark.skipif(
    ON_TENSORFLOW, reason="tests/test_export.py exports from TensorFlow"
)
def test_export_from_this_backend_is_validated_against_this_backend(tmp_path):
    import onnxruntime as ort

    from keras_mlh.export import export_encoder

    x, y = _digits()
    keras.utils.set_random_seed(0)
    model = MLH(num_classes=4, bits=8)
    model.compile()
    model.fit(x, y, batch_size=16, epochs=1, verbose=0)
    metadata = export_encoder(model, tmp_path / "encoder", sample_images=x)
    assert metadata["trained_backend"] == BACKEND
    # Each format (Keras's exporter here, or under TensorFlow) is checked
    # against the model as this backend computes it.
    for name in ("onnx", "saved_model"):
        assert metadata["validation"][name]["bit_agreement"] >= 0.999
        assert metadata["validation"][name]["packed_matches_codes"]
    assert sorted(os.listdir(tmp_path / "encoder")) == [
        "metadata.json",
        "model.onnx",
        "saved_model",
    ]
    onnx_file = tmp_path / "encoder" / "model.onnx"
    check_onnx_graph(onnx_file, [16, 16, 1], bits=8, opset=17)
    session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (codes,) = session.run(["codes"], {"images": x.astype("float32")})
    np.testing.assert_array_equal(codes, model.encode(x))


# What this backend's exporter writes (see keras_mlh/export/artifacts.py) for
# the other heads, an ONNX-only export of a .keras file and a preprocessing
# layer; tests/test_export.py tests the exporter's Python once.
@pytest.mark.parametrize(
    "kwargs",
    [{"mode": "center"}, {"mode": "mlh", "retrieval_branch": "pairwise"}],
    ids=["hash-layer", "pairwise-branch"],
)
def test_export_other_heads_and_branches(kwargs, tmp_path):
    from keras_mlh.export import export_encoder

    model = MLH(num_classes=4, bits=8, **kwargs)
    model.build((None, 16, 16, 3))
    metadata = export_encoder(model, tmp_path / "out")  # seeded random images
    assert metadata["retrieval_branch"] == model.retrieval_branch
    assert metadata["input_shape"] == [16, 16, 3]
    assert metadata["validation"]["num_images"] == 64
    for name in ("onnx", "saved_model"):
        assert metadata["validation"][name]["bit_agreement"] >= 0.999


def test_export_from_keras_file_onnx_only(tmp_path):
    from keras_mlh.export import export_encoder

    x, _ = _digits()
    model = MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 1))
    model.save(tmp_path / "mlh.keras")
    out = tmp_path / "onnx_only"
    metadata = export_encoder(
        str(tmp_path / "mlh.keras"), out, formats="onnx", opset=18, sample_images=x
    )
    assert sorted(os.listdir(out)) == ["metadata.json", "model.onnx"]
    assert metadata["formats"] == ["onnx"] and metadata["opset"] == 18
    assert set(metadata["validation"]) == {
        "num_images",
        "atol",
        "min_bit_agreement",
        "onnx",
    }
    assert metadata["validation"]["onnx"]["bit_agreement"] >= 0.999
    check_onnx_graph(out / "model.onnx", [16, 16, 1], bits=8, opset=18)


def test_backbone_with_caffe_preprocessing_exports(tmp_path):
    # ResNet50's preprocessing layer (channel flip, mean) converts to ONNX; a
    # tiny backbone stands in for ResNet50, too slow to export in the suite.
    from keras_mlh.export import export_encoder
    from keras_mlh.models.backbones import CaffePreprocessing

    backbone = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            CaffePreprocessing(),
            keras.layers.Conv2D(8, 3),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    model = MLH(num_classes=3, bits=8, backbone=backbone, input_scale=1.0)
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), "uint8")
    model.compile()
    model.fit(images, np.arange(32) % 3, epochs=1, verbose=0)
    metadata = export_encoder(model, tmp_path / "encoder", sample_images=images)
    for name in ("onnx", "saved_model"):
        assert metadata["validation"][name]["bit_agreement"] == 1.0


@pytest.mark.skipif(
    ON_TENSORFLOW, reason="export failures under TensorFlow: test_export"
)
def test_export_from_this_backend_reports_a_bad_argument_in_one_line(tmp_path):
    from keras_mlh.export import export_encoder

    model = MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 1))
    with pytest.raises(ValueError, match="sample_images"):
        export_encoder(
            model, tmp_path / "encoder", sample_images=np.zeros((2, 8, 8, 1))
        )
    assert not os.path.exists(tmp_path / "encoder")


def test_backend_check_names_the_backend_and_what_to_install(monkeypatch):
    assert check_keras_backend(BACKEND) == BACKEND
    with pytest.raises(ValueError, match="KERAS_BACKEND='numpy' is not one of"):
        check_keras_backend("numpy")
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "torch" else real(name, *a),
    )
    with pytest.raises(ValueError, match=r"needs the torch package.*pip install torch"):
        check_keras_backend("torch")


@pytest.mark.parametrize(
    "backend, match",
    [("nonsense", "KERAS_BACKEND='nonsense' is not one of"), ("", None)],
)
def test_importing_the_model_with_an_unknown_backend_fails_clearly(backend, match):
    if not backend:
        # A backend whose package this environment lacks.
        missing = [
            name
            for name, (packages, _) in keras_mlh.backends.SUPPORTED.items()
            if any(__import__("importlib").util.find_spec(p) is None for p in packages)
        ]
        if not missing:
            pytest.skip("every supported backend is installed here")
        backend, match = missing[0], f"KERAS_BACKEND='{missing[0]}' needs the"
    env = {**os.environ, "KERAS_BACKEND": backend}
    result = subprocess.run(
        [sys.executable, "-c", "import keras_mlh.models"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ValueError" in result.stderr and match in result.stderr
    # The TensorFlow-free serving side still imports.
    run_python(
        "import keras_mlh.metrics; from keras_mlh import HammingIndex, pack_codes",
        backend=backend,
    )


def test_fit_and_encode_from_streamed_image_files_on_this_backend(tmp_path):
    """The tf.data file pipeline feeds `fit` and `encode` on every backend."""
    from PIL import Image

    x, y = _digits(n=48)
    for i, (image, label) in enumerate(zip(x, y, strict=True)):
        folder = tmp_path / f"class{label}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(image[..., 0]).save(folder / f"{i}.png")
    data = keras_mlh.datasets.from_directory(
        tmp_path, image_size=(16, 16), color_mode="grayscale", batch_size=16
    )
    keras.utils.set_random_seed(0)
    model = MLH(num_classes=4, bits=8)
    model.compile()
    history = model.fit(data.train, epochs=3, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < losses[0], history.history
    codes = model.encode(data.x_query)
    assert codes.shape == (len(data.y_query), 8)
    assert set(np.unique(codes)) <= {-1, 1}

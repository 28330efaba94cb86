"""Export of MLH encoders to SavedModel and ONNX (keras_mlh.export)."""

import hashlib
import json
import os

import numpy as np
import pytest
from helpers import check_onnx_graph

from keras_mlh.export import ExportValidationError, export_encoder, exporter
from keras_mlh.files import TEMP_PREFIX
from keras_mlh_runtime.codes import pack_codes

# Once, under TensorFlow: the exporter's folders, metadata, argument checks
# and validation bookkeeping are Python. What each backend's own exporter
# writes (jax2tf's SavedModel, torch.onnx's ONNX; TensorFlow writes the other
# format) is tested in tests/test_backends.py on every backend: the MoH head,
# the hash-layer head, the pairwise branch, an ONNX-only export of a .keras
# file and a preprocessing layer.
pytestmark = pytest.mark.backend_independent


def _leftovers(folder):
    return [n for n in os.listdir(folder) if n.startswith(TEMP_PREFIX)]


def test_export_writes_folder_and_metadata(mnist_export, mnist_mlh):
    folder, metadata = mnist_export
    assert sorted(os.listdir(folder)) == ["metadata.json", "model.onnx", "saved_model"]
    with open(folder / "metadata.json") as f:
        assert json.load(f) == metadata
    assert metadata["format"] == "keras-mlh-encoder"
    assert metadata["bits"] == 32 and metadata["bytes_per_code"] == 4
    assert metadata["num_classes"] == 10
    assert metadata["retrieval_branch"] == mnist_mlh.retrieval_branch == "center"
    assert metadata["input_shape"] == [28, 28, 1]
    assert metadata["input_dtype"] == "float32"
    assert metadata["output_names"] == ["embedding", "codes", "packed"]
    assert metadata["bit_order"] == "little"
    assert metadata["opset"] == 17
    import keras_mlh

    assert metadata["keras_mlh_version"] == keras_mlh.__version__
    assert (
        metadata["onnx_sha256"]
        == hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    )
    validation = metadata["validation"]
    assert validation["num_images"] == 1000
    for name in ("saved_model", "onnx"):
        assert validation[name]["bit_agreement"] >= 0.999
        assert validation[name]["max_abs_diff"] <= 1e-4
        assert validation[name]["packed_matches_codes"]
    # The folder gets the usual permissions, not mkdtemp's private 0700.
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(folder).st_mode & 0o777 == 0o777 & ~umask
    assert _leftovers(folder.parent) == []


def test_onnx_graph_has_named_batch_dim_opset_and_metadata(mnist_export):
    folder, _ = mnist_export
    check_onnx_graph(folder / "model.onnx", [28, 28, 1], bits=32, opset=17)


def test_exported_codes_equal_keras_codes_on_mnist_queries(
    mnist_export, mnist_mlh, mnist5k
):
    """Done-when of the export feature: >= 99.9% equal bits over 1,000 queries."""
    import onnxruntime as ort
    import tensorflow as tf

    folder, _ = mnist_export
    images = mnist5k.x_query
    keras_codes = mnist_mlh.encode(images)
    keras_embedding = mnist_mlh.embed(images)

    serving = tf.saved_model.load(str(folder / "saved_model")).signatures[
        "serving_default"
    ]
    saved = {
        k: v.numpy() for k, v in serving(images=tf.constant(images, "float32")).items()
    }
    session = ort.InferenceSession(
        str(folder / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    names = ["embedding", "codes", "packed"]
    onnx_out = dict(
        zip(
            names,
            session.run(names, {"images": images.astype(np.float32)}),
            strict=True,
        )
    )
    for outputs in (saved, onnx_out):
        assert outputs["codes"].dtype == np.int8 and outputs["packed"].dtype == np.uint8
        assert outputs["embedding"].dtype == np.float32
        assert np.mean(outputs["codes"] == keras_codes) >= 0.999
        np.testing.assert_allclose(outputs["embedding"], keras_embedding, atol=1e-4)
        # Same bit order as keras_mlh_runtime.codes (and so as the faiss index).
        np.testing.assert_array_equal(outputs["packed"], pack_codes(outputs["codes"]))


def test_resize_to_is_recorded_for_the_runtime(tmp_path):
    import keras_mlh
    from keras_mlh_runtime import HashEncoder

    model = keras_mlh.MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 3))
    out = tmp_path / "out"
    # Validation is tested above; here only the recorded field counts.
    export = {"formats": "onnx", "validate": False}
    metadata = export_encoder(model, out, resize_to=(20, 24), **export)
    assert metadata["resize_to"] == [20, 24]
    assert HashEncoder.load(out).resize_to == (20, 24)
    assert export_encoder(model, tmp_path / "plain", **export)["resize_to"] is None


@pytest.mark.parametrize("resize_to", [(8, 24), (20,), "20", (20.0, 24), (True, 24)])
def test_bad_resize_to(resize_to, tmp_path):
    import keras_mlh

    model = keras_mlh.MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 3))
    with pytest.raises(ValueError, match="`resize_to` must be None or"):
        export_encoder(model, tmp_path / "out", resize_to=resize_to)
    assert not (tmp_path / "out").exists()


def test_failed_validation_leaves_no_folder(mnist_mlh, monkeypatch, tmp_path):
    real = exporter.keras_embedding
    # A Keras reference with every sign flipped: no export can agree with it.
    monkeypatch.setattr(
        exporter, "keras_embedding", lambda encoder, x: -real(encoder, x)
    )
    out = tmp_path / "encoder"
    with pytest.raises(ExportValidationError, match="disagrees with the Keras model"):
        export_encoder(mnist_mlh, out)
    assert not out.exists()
    assert os.listdir(tmp_path) == []  # no temporary folders either


def test_every_export_needs_min_bit_agreement(monkeypatch, tmp_path):
    import keras_mlh

    model = keras_mlh.MLH(num_classes=4, bits=8)
    model.build((None, 16, 16, 3))
    metadata = export_encoder(model, tmp_path / "out", formats="onnx")
    assert metadata["validation"]["min_bit_agreement"] == exporter.MIN_BIT_AGREEMENT
    monkeypatch.setattr(exporter, "MIN_BIT_AGREEMENT", 1.5)  # beyond every export
    with pytest.raises(ExportValidationError, match=r"agree \(need 150%\)"):
        export_encoder(model, tmp_path / "again", formats="onnx")


def test_failed_validation_keeps_the_previous_export(mnist_mlh, monkeypatch, tmp_path):
    out = tmp_path / "encoder"
    out.mkdir()
    (out / "metadata.json").write_text('{"previous": true}')
    monkeypatch.setattr(
        exporter,
        "keras_embedding",
        lambda encoder, x: np.full((len(x), 32), 0.5, np.float32),
    )
    with pytest.raises(ExportValidationError):
        export_encoder(mnist_mlh, out, formats="onnx", overwrite=True)
    assert os.listdir(out) == ["metadata.json"]
    assert (out / "metadata.json").read_text() == '{"previous": true}'
    assert _leftovers(tmp_path) == []


def test_overwrite_replaces_an_earlier_export(mnist_mlh, tmp_path):
    out = tmp_path / "encoder"
    out.mkdir()
    (out / "metadata.json").write_text("{}")
    (out / "stale.txt").write_text("old")
    metadata = export_encoder(
        mnist_mlh, out, formats=["onnx"], validate=False, overwrite=True
    )
    assert metadata["validation"] is None
    assert sorted(os.listdir(out)) == ["metadata.json", "model.onnx"]
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ errors
def test_missing_model_file(tmp_path):
    with pytest.raises(ValueError, match="Model file not found"):
        export_encoder(tmp_path / "nope.keras", tmp_path / "out")


def test_file_that_is_not_a_keras_archive(tmp_path):
    path = tmp_path / "model.keras"
    path.write_text("not a zip")
    with pytest.raises(ValueError, match="not a Keras model file"):
        export_encoder(path, tmp_path / "out")


def test_keras_file_that_is_not_mlh(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    path = tmp_path / "dense.keras"
    model.save(path)
    with pytest.raises(ValueError, match="not a keras_mlh.MLH model"):
        export_encoder(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_model_object_that_is_not_mlh(tmp_path):
    with pytest.raises(ValueError, match="must be a keras_mlh.MLH model"):
        export_encoder(object(), tmp_path / "out")


def test_unbuilt_model(tmp_path):
    import keras_mlh

    with pytest.raises(ValueError, match=r"model.build\(\(None, height"):
        export_encoder(keras_mlh.MLH(10, 8), tmp_path / "out")


def test_unwritable_location(mnist_mlh, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="Cannot write to"):
        export_encoder(mnist_mlh, blocker / "encoder")
    assert os.listdir(tmp_path) == ["a_file"]


def test_out_dir_that_is_a_file(mnist_mlh, tmp_path):
    path = tmp_path / "encoder"
    path.write_text("")
    with pytest.raises(ValueError, match="is not a folder"):
        export_encoder(mnist_mlh, path)


def test_overwrite_never_replaces_a_folder_that_is_not_an_export(mnist_mlh, tmp_path):
    (tmp_path / "thesis.tex").write_text("mine")
    with pytest.raises(ValueError, match="Refusing to replace .*no metadata.json"):
        export_encoder(mnist_mlh, tmp_path, formats="onnx", overwrite=True)
    assert os.listdir(tmp_path) == ["thesis.tex"]


def test_non_empty_out_dir_without_overwrite(mnist_mlh, tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="pass overwrite=True"):
        export_encoder(mnist_mlh, tmp_path)
    assert os.listdir(tmp_path) == ["keep.txt"]


@pytest.mark.parametrize("opset", [16, 19, "17", 17.0, True])
def test_bad_opset(opset, mnist_mlh, tmp_path):
    with pytest.raises(ValueError, match="`opset` must be an integer from 17 to 18"):
        export_encoder(mnist_mlh, tmp_path / "out", opset=opset)


@pytest.mark.parametrize("atol", [0, -1e-4, float("nan"), float("inf"), "1e-4", True])
def test_bad_atol(atol, mnist_mlh, tmp_path):
    with pytest.raises(ValueError, match="`atol` must be a positive number"):
        export_encoder(mnist_mlh, tmp_path / "out", atol=atol)


@pytest.mark.parametrize("formats", ["tflite", [], ["onnx", "tflite"], 3])
def test_bad_formats(formats, mnist_mlh, tmp_path):
    with pytest.raises(ValueError, match="`formats` must be one of"):
        export_encoder(mnist_mlh, tmp_path / "out", formats=formats)


def test_bad_sample_images(mnist_mlh, tmp_path):
    rgb = np.zeros((4, 28, 28, 3), np.uint8)
    with pytest.raises(ValueError, match="channels=3 but the model expects channels=1"):
        export_encoder(mnist_mlh, tmp_path / "out", sample_images=rgb)
    assert os.listdir(tmp_path) == []


def test_sample_images_of_a_file_are_its_first_max_samples(
    mnist_mlh, mnist5k, tmp_path
):
    np.save(tmp_path / "samples.npy", mnist5k.x_query[:300])
    with pytest.raises(ValueError, match="Sample images not found"):
        export_encoder(mnist_mlh, tmp_path / "out", sample_images=tmp_path / "x.npy")
    assert sorted(os.listdir(tmp_path)) == ["samples.npy"]
    metadata = export_encoder(
        mnist_mlh,
        tmp_path / "out",
        formats="onnx",
        sample_images=tmp_path / "samples.npy",
        max_samples=40,
    )
    assert metadata["validation"]["num_images"] == 40


def test_overwrite_never_deletes_the_source_model(tmp_path):
    earlier = tmp_path / "encoder"
    earlier.mkdir()
    (earlier / "metadata.json").write_text("{}")
    (earlier / "model.keras").write_text("the only copy")
    with pytest.raises(ValueError, match="holds .*model.keras.*an input"):
        export_encoder(earlier / "model.keras", earlier, overwrite=True)
    assert (earlier / "model.keras").read_text() == "the only copy"


def test_a_tensorflow_worker_failure_reaches_the_caller(monkeypatch, tmp_path):
    # What Model.export cannot write on JAX or PyTorch is written by a
    # TensorFlow process; its uncaught ValueError is the caller's ValueError.
    import subprocess

    from keras_mlh.export import artifacts

    calls = []

    def worker(stderr, status=1):
        def run(argv, **kwargs):
            calls.append((argv, kwargs["env"]["KERAS_BACKEND"]))
            return subprocess.CompletedProcess(argv, status, "", stderr)

        monkeypatch.setattr(artifacts.subprocess, "run", run)

    model = type("Model", (), {"save": lambda self, path: None})()
    worker("Traceback ...\nValueError: Keras could not convert the encoder")
    with pytest.raises(ValueError, match="^Keras could not convert the encoder$"):
        artifacts.export_under_tensorflow(model, tmp_path, ["onnx"], 17)
    argv, backend = calls[0]
    assert argv[1:3] == ["-c", artifacts._WORKER]
    assert argv[-2:] == ["17", "onnx"] and backend == "tensorflow"
    worker("Fatal Python error: Segmentation fault", status=-11)
    with pytest.raises(RuntimeError, match="exit status -11.*Segmentation fault"):
        artifacts.export_under_tensorflow(model, tmp_path, ["onnx"], 17)

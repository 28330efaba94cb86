"""The TensorFlow-free deployment runtime (export/keras_mlh_runtime)."""

import ast
import json
import pathlib
import shutil
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import keras_mlh_runtime
from keras_mlh_runtime import HashEncoder
from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.index import HammingIndex

pytestmark = pytest.mark.backend_independent  # serving: onnxruntime and faiss

# Modules the runtime must never import: a serving machine has numpy,
# onnxruntime and faiss-cpu only (numba serves the metrics, not the runtime),
# and keras-mlh-runtime without keras-mlh.
BLOCKED = (
    "keras_mlh",
    "tensorflow",
    "keras",
    "tf_keras",
    "tf2onnx",
    "tensorflow_datasets",
    "numba",
)

# Installed first in the subprocess: importing a blocked module raises, and
# every attempt (even one a library catches) is recorded. At exit, it prints
# the attempts and the blocked modules found in sys.modules as JSON.
BLOCKER = f"""
import atexit, importlib.abc, json, sys
BLOCKED = {BLOCKED!r}
attempts = []
class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            attempts.append(name)
            raise ModuleNotFoundError(f"{{name}} is blocked", name=name)
        return None
sys.meta_path.insert(0, Blocker())
def report():
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print(json.dumps({{"attempts": attempts, "loaded": loaded}}))
atexit.register(report)
"""


def _run_blocked(code, *args):
    """Runs `code` in a fresh Python where TensorFlow and Keras cannot load."""
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(code), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def _run_without_tensorflow(code, *args):
    done = _run_blocked(code, *args)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"attempts": [], "loaded": []}


@pytest.fixture(scope="module")
def encoder(mnist_export):
    return HashEncoder.load(mnist_export[0])


@pytest.fixture
def export_copy(mnist_export, tmp_path):
    """A copy of the ONNX export to damage."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    for name in ("model.onnx", "metadata.json"):
        shutil.copy(mnist_export[0] / name, folder / name)
    return folder


@pytest.mark.parametrize("module", ["keras", "tensorflow", "keras_mlh"])
def test_the_blocker_blocks(module):
    done = _run_blocked(f"import {module}")
    assert done.returncode != 0 and f"{module} is blocked" in done.stderr
    assert json.loads(done.stdout)["attempts"] == [module]


def test_runtime_imports_no_tensorflow_keras_or_keras_mlh():
    _run_without_tensorflow(
        """
        import keras_mlh_runtime
        from keras_mlh_runtime import (
            code_files, codes, contract, encoder, errors, files, images, index,
        )
        from keras_mlh_runtime import HammingIndex, HashEncoder
        """
    )


def test_every_runtime_module_serves():
    """The runtime holds serving code only: each of its modules is imported,
    directly or not, by the encoder, the index or the Beam pipeline. A rule
    only training uses lives in keras_mlh."""
    package = pathlib.Path(keras_mlh_runtime.__file__).parent
    modules = {}
    for path in package.rglob("*.py"):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[: -1 if parts[-1] == "__init__" else None])] = path
    reached, todo = set(), ["keras_mlh_runtime", "keras_mlh_runtime.beam_encode"]
    while todo:
        name = todo.pop()
        if name in reached or name not in modules:
            continue
        reached.add(name)
        for node in ast.walk(ast.parse(modules[name].read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                todo += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
    assert sorted(set(modules) - reached) == []


def test_runtime_without_tensorflow_matches_keras(
    mnist_export, mnist_mlh, mnist5k, tmp_path
):
    """Encode, index and search real MNIST digits where TF cannot be imported."""
    database, queries = mnist5k.x_train[:1000], mnist5k.x_query[:200]
    np.savez(tmp_path / "images.npz", database=database, queries=queries)
    _run_without_tensorflow(
        """
        import numpy as np
        from keras_mlh_runtime import HashEncoder

        folder, images, out = sys.argv[1:4]
        data = np.load(images)
        encoder = HashEncoder.load(folder)
        index = encoder.build_index(data["database"])  # uint8 images, cast
        distances, ids = encoder.search(data["queries"], index, k=10)
        np.savez(
            out,
            database=encoder.encode(data["database"]),
            queries=encoder.encode(data["queries"]),
            distances=distances,
            ids=ids,
        )
        """,
        mnist_export[0],
        tmp_path / "images.npz",
        tmp_path / "out.npz",
    )
    result = np.load(tmp_path / "out.npz")
    keras_packed = {
        "database": pack_codes(mnist_mlh.encode(database)),
        "queries": pack_codes(mnist_mlh.encode(queries)),
    }
    for name, expected in keras_packed.items():
        got = result[name]
        assert got.dtype == np.uint8 and got.shape == expected.shape
        flipped = np.unpackbits(got ^ expected).sum()
        assert flipped <= 0.001 * got.size * 8, f"{flipped} {name} bits differ"
    index = HammingIndex(32)
    index.add(keras_packed["database"])
    distances, ids = index.search(keras_packed["queries"], k=10)
    if all(np.array_equal(result[n], keras_packed[n]) for n in keras_packed):
        np.testing.assert_array_equal(result["distances"], distances)
        np.testing.assert_array_equal(result["ids"], ids)
    else:  # a bit flipped at float round-off: neighbours may reorder slightly
        assert np.abs(result["distances"].astype(int) - distances).max() <= 2


def test_encode_outputs_match_keras(encoder, mnist_mlh, mnist5k):
    images = mnist5k.x_query[:300]
    embedding = encoder.encode(images, output="embedding")
    codes = encoder.encode(images, output="codes")
    packed = encoder.encode(images)
    assert embedding.dtype == np.float32 and embedding.shape == (300, 32)
    assert codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}
    assert packed.dtype == np.uint8 and packed.shape == (300, 4)
    np.testing.assert_allclose(embedding, mnist_mlh.embed(images), atol=1e-4)
    assert np.mean(codes == mnist_mlh.encode(images)) >= 0.999
    np.testing.assert_array_equal(packed, pack_codes(codes))


def test_encode_accepts_uint8_float_single_images_and_batches(encoder, mnist5k):
    images = mnist5k.x_query[:10]
    packed = encoder.encode(images)
    np.testing.assert_array_equal(encoder.encode(images.astype(np.float64)), packed)
    np.testing.assert_array_equal(encoder.encode(images, batch_size=3), packed)
    np.testing.assert_array_equal(encoder.encode(images[..., 0]), packed)  # (n, h, w)
    np.testing.assert_array_equal(encoder.encode(images[0]), packed[:1])


@pytest.mark.parametrize("count", [1, 7, 10])
def test_batched_encode_matches_one_onnx_call(encoder, mnist5k, count):
    """Batches prepared ahead: same codes, same order; a last partial batch
    (7 = 3 + 3 + 1) and a one-image input."""
    images = mnist5k.x_query[:count]
    one_call = encoder.session.run(
        ["packed"], {encoder.input_name: images.astype(np.float32)}
    )[0]
    np.testing.assert_array_equal(encoder.encode(images, batch_size=3), one_call)


@pytest.fixture(scope="module")
def digit_files(mnist5k, tmp_path_factory):
    """The first 10 query digits as PNG files, with their pixels."""
    from PIL import Image

    folder = tmp_path_factory.mktemp("digits")
    images = mnist5k.x_query[:10]
    paths = [folder / f"{i:02d}.png" for i in range(len(images))]
    for path, image in zip(paths, images, strict=True):
        Image.fromarray(image[..., 0]).save(path)
    return paths, images


@pytest.mark.parametrize("count", [1, 7, 10])
def test_encode_files_matches_encode(encoder, digit_files, count):
    paths, images = digit_files
    expected = encoder.encode(images[:count])
    got = encoder.encode_files(paths[:count], batch_size=3, workers=2)
    np.testing.assert_array_equal(got, expected)
    reordered = encoder.encode_files(paths[:count][::-1], batch_size=3)
    np.testing.assert_array_equal(reordered, expected[::-1])
    embedding = encoder.encode_files(paths[:count], output="embedding")
    np.testing.assert_allclose(
        embedding, encoder.encode(images[:count], output="embedding")
    )


def test_encode_files_refuses_bad_input(encoder, digit_files, tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"no image")
    with pytest.raises(ValueError, match=r"Cannot read image .*bad.png"):
        encoder.encode_files([*digit_files[0][:4], bad], batch_size=2)
    with pytest.raises(ValueError, match="`paths` is empty"):
        encoder.encode_files([])
    with pytest.raises(ValueError, match="`workers` must be None or a positive"):
        encoder.encode_files(digit_files[0], workers=0)
    with pytest.raises(ValueError, match=r"a list of image files, not one path"):
        encoder.encode_files(str(digit_files[0][0]))  # not its characters


class _FailingSession:
    """An onnxruntime session whose second call fails."""

    def __init__(self, session):
        self.session, self.calls = session, 0

    def run(self, outputs, feeds):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("inference failed")
        return self.session.run(outputs, feeds)


@pytest.mark.parametrize("source", ["arrays", "files"])
def test_an_inference_error_stops_the_read_ahead_thread(
    encoder, digit_files, monkeypatch, source
):
    paths, images = digit_files
    monkeypatch.setattr(encoder, "session", _FailingSession(encoder.session))
    with pytest.raises(RuntimeError, match="inference failed") as failure:
        if source == "arrays":
            encoder.encode(images, batch_size=1)
        else:
            encoder.encode_files(paths, batch_size=1, workers=2)
    # `failure` holds the traceback, and with it the batches: the thread
    # must have stopped all the same.
    assert failure.value is not None
    alive = [
        t for t in threading.enumerate() if t.name.startswith("keras-mlh-read-ahead")
    ]
    assert not alive


def test_build_index_from_packed_with_ids_and_search(encoder, mnist5k):
    packed = encoder.encode(mnist5k.x_train[:100])
    index = encoder.build_index(packed=packed, ids=np.arange(100) + 1000)
    distances, ids = encoder.search(mnist5k.x_train[:5], index, k=3)
    np.testing.assert_array_equal(distances[:, 0], 0)
    assert ids.shape == (5, 3) and ids.min() >= 1000


def test_build_index_keeps_paths(encoder, mnist5k, tmp_path):
    paths = [f"digits/{i:03d}.png" for i in range(20)]
    index = encoder.build_index(
        mnist5k.x_train[:20], ids=np.arange(20) + 7, paths=paths
    )
    assert index.paths_of([7, 26]) == ["digits/000.png", "digits/019.png"]
    index.save(tmp_path / "db.index")
    again = HammingIndex.load(tmp_path / "db.index")
    assert again.paths_of(np.arange(20) + 7) == paths


# ---------------------------------------------------------- bad images
def test_wrong_rank(encoder):
    with pytest.raises(ValueError, match=r"x.reshape\(-1, 28, 28, 1\)"):
        encoder.encode(np.zeros((2, 784), np.uint8))


def test_wrong_height(encoder):
    with pytest.raises(ValueError, match="height=32 but the model expects height=28"):
        encoder.encode(np.zeros((2, 32, 28, 1), np.uint8))


def test_wrong_channels(encoder):
    with pytest.raises(ValueError, match="channels=3 but the model expects channels=1"):
        encoder.encode(np.zeros((2, 28, 28, 3), np.uint8))


@pytest.mark.parametrize(
    "images",
    [
        np.full((1, 28, 28, 1), "x"),
        np.zeros((1, 28, 28, 1), bool),
        np.zeros((1, 28, 28, 1), np.int64),
    ],
    ids=["str", "bool", "int64"],
)
def test_wrong_dtype(encoder, images):
    with pytest.raises(
        ValueError, match=r"must be uint8 or float .*astype\(np.float32\)"
    ):
        encoder.encode(images)


@pytest.mark.parametrize(
    "images", [np.zeros((0, 28, 28, 1), np.uint8), []], ids=["zero-batch", "list"]
)
def test_empty_batch(encoder, images):
    with pytest.raises(ValueError, match="is empty: pass at least one image"):
        encoder.encode(images)


def test_nan_pixels(encoder):
    images = np.zeros((2, 28, 28, 1), np.float32)
    images[1, 3, 3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        encoder.encode(images)


def test_bad_output_and_batch_size(encoder):
    images = np.zeros((1, 28, 28, 1), np.uint8)
    with pytest.raises(ValueError, match="`output` must be one of"):
        encoder.encode(images, output="bits")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        encoder.encode(images, batch_size=0)


def test_threads_option(mnist_export, encoder):
    single = HashEncoder.load(mnist_export[0], threads=1)
    images = np.zeros((3, 28, 28, 1), np.uint8)
    np.testing.assert_array_equal(single.encode(images), encoder.encode(images))
    for threads in (0, 1.5, True):
        with pytest.raises(ValueError, match="`threads` must be None or a positive"):
            HashEncoder.load(mnist_export[0], threads=threads)


def test_index_of_other_length(encoder):
    with pytest.raises(ValueError, match="HammingIndex of 32-bit codes"):
        encoder.search(np.zeros((1, 28, 28, 1), np.uint8), HammingIndex(64))
    with pytest.raises(ValueError, match="exactly one of `images` or `packed`"):
        encoder.build_index()


# ------------------------------------------------------------ bad folders
def test_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="Export folder not found"):
        HashEncoder.load(tmp_path / "nope")


def _edit_metadata(folder, drop=(), **fields):
    """Rewrites `folder`'s metadata.json with `fields` set and `drop` removed."""
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata.update(fields)
    for name in drop:
        del metadata[name]
    (folder / "metadata.json").write_text(json.dumps(metadata))


def _truncate(path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGES = {  # how an export copy is damaged, and what loading it then says
    "missing_onnx": (
        lambda folder: (folder / "model.onnx").unlink(),
        r"model.onnx' is missing.*formats=\('onnx',\)",
    ),
    "truncated_onnx_is_refused_by_its_fingerprint": (
        lambda folder: _truncate(folder / "model.onnx"),
        "damaged or comes from another export",
    ),
    "export_without_a_fingerprint": (
        lambda folder: _edit_metadata(folder, drop=["onnx_sha256"]),
        "metadata.json has no onnx_sha256",
    ),
    "missing_metadata": (
        lambda folder: (folder / "metadata.json").unlink(),
        "metadata.json' is missing or unreadable .*; export the model",
    ),
    "corrupt_metadata": (
        lambda folder: _truncate(folder / "metadata.json"),
        "metadata.json' is corrupt",
    ),
    "metadata_of_another_format": (
        lambda folder: (folder / "metadata.json").write_text("[1, 2]"),
        'expected "format": "keras-mlh-encoder"',
    ),
    "metadata_with_invalid_fields": (
        lambda folder: _edit_metadata(folder, bits=12, input_shape=[28, 28]),
        r"bits=12 \(expected a positive multiple of 8\)",
    ),
    "metadata_that_disagrees_with_the_onnx_graph": (
        lambda folder: _edit_metadata(folder, bits=64, input_shape=[32, 32, 3]),
        "does not match its metadata.json",
    ),
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_export_is_refused(export_copy, damage):
    spoil, match = DAMAGES[damage]
    spoil(export_copy)
    with pytest.raises(ValueError, match=match):
        HashEncoder.load(export_copy)


def test_corrupt_onnx_with_its_fingerprint(export_copy):
    from keras_mlh_runtime.contract import fingerprint

    (export_copy / "model.onnx").write_bytes(b"not an onnx graph")
    _edit_metadata(export_copy, onnx_sha256=fingerprint(b"not an onnx graph"))
    with pytest.raises(ValueError, match="model.onnx' is corrupt or unreadable"):
        HashEncoder.load(export_copy)


def test_onnx_of_another_export_is_refused(export_copy, tmp_path):
    """Issue 23: the same shapes, other weights, so it would load silently."""
    import keras

    import keras_mlh
    from keras_mlh.export import export_encoder

    keras.utils.set_random_seed(1)
    other = keras_mlh.MLH(num_classes=10, bits=32)
    other.build((None, 28, 28, 1))
    export_encoder(other, tmp_path / "other", formats="onnx", validate=False)
    shutil.copy(tmp_path / "other" / "model.onnx", export_copy / "model.onnx")
    with pytest.raises(ValueError) as error:
        HashEncoder.load(export_copy)
    message = str(error.value)
    assert "\n" not in message and str(export_copy) in message
    assert (
        "comes from another export" in message and "export the model again" in message
    )


@pytest.mark.parametrize("resize_to", [[20, 20], [28], [28, "30"], [28.0, 30], "28"])
def test_metadata_with_an_invalid_resize_to(export_copy, resize_to):
    _edit_metadata(export_copy, resize_to=resize_to)  # the input is 28 x 28
    with pytest.raises(
        ValueError,
        match="metadata.json': `resize_to` must be None or .*at least the input",
    ):
        HashEncoder.load(export_copy)


def test_an_encoder_with_resize_to_reads_files_resized_then_center_cropped(
    export_copy, mnist5k, tmp_path
):
    from PIL import Image

    _edit_metadata(export_copy, resize_to=[36, 32])
    encoder = HashEncoder.load(export_copy)
    assert encoder.resize_to == (36, 32)
    # Files already of the resize size: the crop alone is left, so the codes
    # are those of the central 28 x 28 pixels.
    framed = np.zeros((8, 36, 32, 1), np.uint8)
    framed[:, 4:32, 2:30] = mnist5k.x_query[:8]
    paths = []
    for i, image in enumerate(framed):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(image[..., 0]).save(paths[-1])
    np.testing.assert_array_equal(
        encoder.encode_files(paths), encoder.encode(mnist5k.x_query[:8])
    )

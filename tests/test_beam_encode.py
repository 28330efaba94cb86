"""`keras_mlh_runtime.beam_encode`: the Apache Beam batch encoder.

Beam cannot share the test environment (it caps protobuf, pillow and pyarrow
below what TensorFlow's side resolves to), so the pipeline runs in its own
environment, `.venv-beam` (made by `scripts/venv_beam.sh`, which
`scripts/test.sh` runs first): numpy, onnxruntime, onnx, pillow and
apache-beam, and no TensorFlow or Keras at all. The codes it writes are
compared here with `HashEncoder`'s and indexed with `keras-mlh index build`.
"""

import glob
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_mlh.cli import main as keras_mlh
from keras_mlh_runtime import HashEncoder
from keras_mlh_runtime.code_files import load_code_files
from keras_mlh_runtime.index import HammingIndex

pytestmark = pytest.mark.backend_independent  # onnxruntime and Beam

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BEAM_PYTHON = os.environ.get(
    "KERAS_MLH_BEAM_PYTHON", os.path.join(ROOT, ".venv-beam", "bin", "python")
)

needs_beam = pytest.mark.skipif(
    not os.path.exists(BEAM_PYTHON),
    reason="no Beam environment: run scripts/venv_beam.sh (scripts/test.sh does)",
)


def beam_encode(*args):
    return subprocess.run(
        [BEAM_PYTHON, "-m", "keras_mlh_runtime.beam_encode", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def digit_folder(mnist5k, tmp_path_factory):
    """300 real 28x28 grayscale digits as PNG files, with their pixels."""
    folder = tmp_path_factory.mktemp("beam_digits")
    images = mnist5k.x_train[:300]
    for i, image in enumerate(images):
        Image.fromarray(image[..., 0]).save(folder / f"{i:03d}.png")
    return folder, images


@pytest.fixture(scope="module")
def shards(mnist_export, digit_folder, tmp_path_factory):
    folder, _ = digit_folder
    prefix = tmp_path_factory.mktemp("beam_out") / "codes" / "digits"
    done = beam_encode(
        "--export", mnist_export[0],
        "--images", folder / "*.png",
        "--output", prefix,
        "--num_shards", 3,  # Beam's spelling of options: ours too
        "--batch-size", 64,
        "--runner", "DirectRunner",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return prefix, done


@needs_beam
def test_the_beam_environment_has_no_tensorflow_or_keras():
    done = subprocess.run(
        [
            BEAM_PYTHON,
            "-c",
            "import importlib.util as u, json; print(json.dumps("
            "[m for m in ('tensorflow', 'keras', 'apache_beam') if u.find_spec(m)]))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert json.loads(done.stdout) == ["apache_beam"], done.stderr


@needs_beam
def test_codes_equal_hash_encoder(shards, digit_folder, mnist_export):
    prefix, done = shards
    folder, images = digit_folder
    files = sorted(glob.glob(f"{prefix}-*-of-00003.npz"))
    assert len(files) == 3  # 300 paths spread over every shard
    assert "Encoded 300 images into 3 shard(s) of 32-bit codes" in done.stdout
    packed, ids, paths, bits = load_code_files(files)
    assert (bits, ids, packed.dtype, packed.shape) == (32, None, np.uint8, (300, 4))
    expected = HashEncoder.load(mnist_export[0]).encode(images)
    by_name = {
        os.path.basename(str(p)): code for p, code in zip(paths, packed, strict=True)
    }
    assert sorted(by_name) == [f"{i:03d}.png" for i in range(300)]
    np.testing.assert_array_equal(
        np.stack([by_name[f"{i:03d}.png"] for i in range(300)]), expected
    )
    for file in files:  # sorted by path within a shard
        with np.load(file) as shard:
            assert list(shard["paths"]) == sorted(shard["paths"])
    assert not glob.glob(f"{os.path.dirname(prefix)}/.tmp-*")


@needs_beam
def test_index_build_reads_the_shards(shards, tmp_path, capsys):
    prefix, _ = shards
    files = sorted(glob.glob(f"{prefix}-*.npz"))
    assert keras_mlh(["index", "build", *files, str(tmp_path / "db.index")]) == 0
    packed, _, paths, _ = load_code_files(files)
    index = HammingIndex.load(str(tmp_path / "db.index"))
    distances, ids = index.search(packed[:5], k=1)
    np.testing.assert_array_equal(distances[:, 0], 0)
    names = index.paths_of(index.ids)
    assert len(names) == 300 and None not in names
    assert set(index.paths_of(ids[:, 0])) <= set(map(str, paths))


@needs_beam
def test_refuses_an_earlier_runs_shards_and_an_empty_glob(
    shards, digit_folder, mnist_export, tmp_path
):
    prefix, _ = shards
    folder, _ = digit_folder
    again = beam_encode(
        "--export", mnist_export[0], "--images", folder / "*.png", "--output", prefix
    )
    assert again.returncode == 1
    assert (
        again.stderr.strip()
        .splitlines()[-1]
        .startswith("python -m keras_mlh_runtime.beam_encode: error: ")
    )
    assert (
        "shards of an earlier run" in again.stderr and "Traceback" not in again.stderr
    )
    empty = beam_encode(
        "--export", mnist_export[0], "--images", tmp_path / "*.jpg", "--output",
        tmp_path / "codes",
    )  # fmt: skip
    assert empty.returncode == 1 and "No file matches --images" in empty.stderr
    missing = beam_encode(
        "--export", tmp_path, "--images", folder / "*.png", "--output",
        tmp_path / "codes",
    )  # fmt: skip
    assert missing.returncode == 1 and "metadata.json' is missing" in missing.stderr
    swapped = tmp_path / "swapped"
    shutil.copytree(mnist_export[0], swapped)
    (swapped / "model.onnx").write_bytes(b"\x08\x07" + b"0" * 64)
    foreign = beam_encode(
        "--export", swapped, "--images", folder / "*.png", "--output",
        tmp_path / "codes",
    )  # fmt: skip
    assert foreign.returncode == 1 and "comes from another" in foreign.stderr
    (tmp_path / "bad.png").write_bytes(b"not a png")
    bad = beam_encode(
        "--export", mnist_export[0], "--images", tmp_path / "*.png", "--output",
        tmp_path / "codes",
    )  # fmt: skip
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert (
        bad.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "python -m keras_mlh_runtime.beam_encode: error: Cannot read image "
        )
    )
    assert not glob.glob(str(tmp_path / "codes*"))


@needs_beam
def test_overwrite_replaces_an_earlier_runs_shards(
    shards, digit_folder, mnist_export, tmp_path
):
    """--overwrite: this run's shards replace the earlier ones, including
    those of another shard count, which are removed after the run."""
    import shutil

    prefix, _ = shards
    folder, _ = digit_folder
    for shard in glob.glob(f"{prefix}-*-of-*.npz"):  # a copy of the 3 shards
        shutil.copy(shard, tmp_path)
    some = tmp_path / "some"
    some.mkdir()
    for name in sorted(os.listdir(folder))[:20]:
        shutil.copy(folder / name, some / name)
    again = beam_encode(
        "--export", mnist_export[0], "--images", some / "*.png",
        "--output", tmp_path / prefix.name, "--num-shards", 2, "--overwrite",
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-3000:]
    left = sorted(glob.glob(str(tmp_path / f"{prefix.name}-*.npz")))
    assert [os.path.basename(p) for p in left] == [
        f"{prefix.name}-{shard:05d}-of-00002.npz" for shard in range(2)
    ]
    paths = np.concatenate([np.load(p)["paths"] for p in left])
    assert sorted(os.path.basename(p) for p in paths) == sorted(os.listdir(some))


_REWRITE_SHARD = """
import sys
import numpy as np
from apache_beam.io.filesystems import FileSystems
from keras_mlh_runtime import beam_encode
prefix, rename = sys.argv[1], FileSystems.rename
beam_encode._write_shard(0, [("a.png", np.zeros(2, np.uint8))], prefix, 1)

def killed(*args):
    raise KeyboardInterrupt  # stands for a kill at the rename
FileSystems.rename = killed
try:
    beam_encode._write_shard(0, [("b.png", np.ones(2, np.uint8))], prefix, 1)
except KeyboardInterrupt:
    print(np.load(prefix + "-00000-of-00001.npz")["paths"].tolist())
FileSystems.rename = rename
beam_encode._write_shard(0, [("c.png", np.ones(2, np.uint8))], prefix, 1)
print(np.load(prefix + "-00000-of-00001.npz")["paths"].tolist())
"""


@needs_beam
def test_a_shard_is_replaced_in_one_rename_never_deleted_first(tmp_path):
    """Issue 23: an interrupted rewrite of a shard leaves the earlier shard
    whole (not deleted before the rename) and no hidden temporary."""
    result = subprocess.run(
        [BEAM_PYTHON, "-c", _REWRITE_SHARD, str(tmp_path / "codes")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("\n")[:2] == ["['a.png']", "['c.png']"]
    assert os.listdir(tmp_path) == ["codes-00000-of-00001.npz"]


@pytest.fixture(scope="module")
def resize_to_export(mnist_export, tmp_path_factory):
    """`mnist_export` with the resize-then-crop recipe of `export_encoder(...,
    resize_to=(36, 32))` in its metadata (the graph is the same)."""
    import shutil

    folder = tmp_path_factory.mktemp("resize_to_export") / "encoder"
    folder.mkdir()
    shutil.copy(mnist_export[0] / "model.onnx", folder / "model.onnx")
    metadata = json.loads((mnist_export[0] / "metadata.json").read_text())
    metadata["resize_to"] = [36, 32]
    (folder / "metadata.json").write_text(json.dumps(metadata))
    return folder


@needs_beam
def test_codes_honour_the_exports_resize_to(
    resize_to_export, mnist_export, mnist5k, tmp_path
):
    """Files of other sizes than the input: resized to `resize_to`, then
    center-cropped, as `HashEncoder.encode_files` reads them; not resized
    straight to the input size."""
    rng = np.random.default_rng(0)
    paths = []
    for i, digit in enumerate(mnist5k.x_query[:24]):
        # Digits framed off-center in 40-56 pixel images: resize-then-crop
        # and a plain resize see different pixels.
        height, width = (int(s) for s in rng.integers(40, 57, size=2))
        image = np.zeros((height, width), np.uint8)
        image[2 : 2 + 28, 3 : 3 + 28] = digit[..., 0]
        paths.append(tmp_path / f"{i:02d}.png")
        Image.fromarray(image).save(paths[-1])
    prefix = tmp_path / "codes" / "framed"
    done = beam_encode(
        "--export", resize_to_export, "--images", tmp_path / "*.png",
        "--output", prefix,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    packed, _, got_paths, _ = load_code_files(sorted(glob.glob(f"{prefix}-*.npz")))
    by_name = {
        os.path.basename(str(p)): c for p, c in zip(got_paths, packed, strict=True)
    }
    codes = np.stack([by_name[p.name] for p in paths])
    np.testing.assert_array_equal(
        codes, HashEncoder.load(resize_to_export).encode_files(paths)
    )
    plain = HashEncoder.load(mnist_export[0]).encode_files(paths)
    assert (codes != plain).any(axis=1).sum() >= len(paths) // 2


def test_without_beam_the_import_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import fails
    monkeypatch.delitem(sys.modules, "keras_mlh_runtime.beam_encode", raising=False)
    with pytest.raises(
        ImportError, match=r"needs Apache Beam.*keras-mlh-runtime\[beam\]"
    ):
        import keras_mlh_runtime.beam_encode  # noqa: F401

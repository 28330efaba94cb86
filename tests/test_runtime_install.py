"""keras-mlh-runtime installed from ./export runs without TensorFlow or Keras.

`scripts/venv_beam.sh` (run by `scripts/test.sh` at set-up time, so the test
itself is offline) installs the distribution, not an editable checkout, into
`.venv-beam` with nothing else of keras-mlh's. The encoder runs there on a
real export and must give the codes the test environment's runtime gives.
"""

import json
import os
import subprocess

import numpy as np
import pytest

from keras_mlh_runtime import HashEncoder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-beam")
PYTHON = os.environ.get("KERAS_MLH_BEAM_PYTHON", os.path.join(VENV, "bin", "python"))

pytestmark = [
    pytest.mark.backend_independent,  # the runtime's own environment
    pytest.mark.skipif(
        not os.path.exists(PYTHON),
        reason="no runtime environment: run scripts/venv_beam.sh (scripts/test.sh does)",
    ),
]

SCRIPT = """
import importlib.metadata, importlib.util, json, sys
import numpy as np
import keras_mlh_runtime
from keras_mlh_runtime import HashEncoder

folder, images, out = sys.argv[1:4]
encoder = HashEncoder.load(folder)
data = np.load(images)
index = encoder.build_index(data)
distances, ids = encoder.search(data[:5], index, k=3)
np.savez(out, packed=encoder.encode(data), distances=distances)
print(json.dumps({
    "absent": [m for m in ("tensorflow", "keras", "keras_mlh")
               if importlib.util.find_spec(m) is None],
    "module": keras_mlh_runtime.__file__,
    "requires": [r for r in importlib.metadata.requires("keras-mlh-runtime")
                 if "extra ==" not in r],
}))
"""


def test_installed_runtime_encodes_without_tensorflow_or_keras(
    mnist_export, mnist5k, tmp_path
):
    images = mnist5k.x_query[:50]
    np.save(tmp_path / "images.npy", images)
    done = subprocess.run(
        [PYTHON, "-c", SCRIPT, mnist_export[0], tmp_path / "images.npy",
         tmp_path / "out.npz"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # not the checkout: only what is installed can import
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["absent"] == ["tensorflow", "keras", "keras_mlh"]
    # The installed copy, not the checkout's export/ folder.
    assert report["module"].startswith(VENV) and "site-packages" in report["module"]
    names = sorted(r.split(">")[0].split("<")[0].strip() for r in report["requires"])
    assert names == ["faiss-cpu", "numpy", "onnxruntime"]
    result = np.load(tmp_path / "out.npz")
    encoder = HashEncoder.load(mnist_export[0])
    np.testing.assert_array_equal(result["packed"], encoder.encode(images))
    distances, _ = encoder.search(images[:5], encoder.build_index(images), k=3)
    np.testing.assert_array_equal(result["distances"], distances)

"""The examples run as a user runs them (tiny settings), so they cannot rot."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from helpers import import_blocker

pytestmark = pytest.mark.end_to_end  # the examples as a user runs them

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")


def _example(name):
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", os.path.join(EXAMPLES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def main_job(tmp_path_factory):
    out = tmp_path_factory.mktemp("main") / "run"
    report = _example("main_job").main(["--epochs", "1", "--out", str(out)])
    return out, report


def test_main_job_trains_evaluates_exports_and_searches(main_job):
    out, report = main_job
    assert 0.5 < report["map"] <= 1.0  # one epoch on real digits; chance is ~0.1
    for name in ("model.keras", "database.index", "search.json"):
        assert (out / name).is_file()
    for name in ("report.json", "pr_curve.png", "history.png"):
        assert (out / "eval" / name).is_file()
    assert (out / "export" / "model.onnx").is_file()
    search = json.loads((out / "search.json").read_text())
    # The ONNX codes searched in faiss give the Keras codes' mAP back.
    assert search["map_onnx_codes"] == pytest.approx(report["map"], abs=1e-3)
    assert len(search["examples"]) == 5 and len(search["examples"][0]["ids"]) == 10


def test_deploy_example_runs_without_tensorflow(main_job, tmp_path):
    out, _ = main_job
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28, 1), dtype=np.uint8)
    np.save(tmp_path / "db.npy", images)
    np.save(tmp_path / "q.npy", images[:3])
    blocker = import_blocker(("tensorflow", "keras", "numba")) + (
        "import runpy\n"
        "sys.argv = sys.argv[1:]\n"
        "runpy.run_path(sys.argv[0], run_name='__main__')\n"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            blocker,
            os.path.join(EXAMPLES, "deploy_without_tensorflow.py"),
            str(out / "export"),
            "--database",
            str(tmp_path / "db.npy"),
            "--queries",
            str(tmp_path / "q.npy"),
            "--k",
            "3",
            "--index",
            str(tmp_path / "db.index"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "40 codes of 32 bits indexed" in result.stdout
    # Each query image is in the database: it finds itself at distance 0.
    first = next(
        line for line in result.stdout.splitlines() if line.startswith("query 0")
    )
    assert "at Hamming distances [0," in first
    assert "TensorFlow or Keras imported: neither" in result.stdout
    assert (tmp_path / "db.index").is_file()


def test_multi_label_example():
    score = _example("multi_label").main(["--epochs", "1", "--images", "600"])
    assert 0.0 < score <= 1.0


def test_custom_backbone_example():
    codes = _example("custom_backbone").main(["--epochs", "1", "--train-images", "64"])
    assert codes.shape == (200, 32) and set(np.unique(codes)) <= {-1, 1}

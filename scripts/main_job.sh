#!/usr/bin/env bash
# Installs keras-mlh into ./.venv and runs the main job offline: train MLH on
# the MNIST-5k digits, evaluate, export (SavedModel + ONNX) and search the
# database with the exported encoder. Arguments go to examples/main_job.py.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
.venv/bin/python examples/main_job.py "$@"

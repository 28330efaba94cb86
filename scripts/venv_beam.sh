#!/usr/bin/env bash
# Makes ./.venv-beam (once): the Apache Beam batch encoder's own environment,
# without TensorFlow or Keras. Beam cannot share ./.venv: apache-beam caps
# protobuf < 7, pillow < 13 and pyarrow < 26, below what TensorFlow's side of
# ./.venv resolves to, so installing it there would downgrade the tested
# stack. tests/test_beam_encode.py runs the pipeline with this interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-beam/bin/python ]; then
  "$PYTHON" -m venv .venv-beam
  .venv-beam/bin/python -m pip install --quiet --upgrade pip
fi
# The `beam` extra of pyproject.toml plus numpy; keras-mlh itself without its
# (TensorFlow) dependencies: the pipeline imports only keras_mlh_runtime.
.venv-beam/bin/python -m pip install --quiet numpy "onnxruntime>=1.17" "onnx>=1.15" "pillow>=10" "apache-beam>=2.60,<3"
.venv-beam/bin/python -m pip install --quiet --no-deps -e .

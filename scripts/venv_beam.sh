#!/usr/bin/env bash
# Makes ./.venv-beam: the Apache Beam batch encoder's own environment, with
# keras-mlh-runtime installed from ./export with its `beam` extra and nothing
# else: no keras-mlh, TensorFlow or Keras. Beam cannot share ./.venv:
# apache-beam caps protobuf < 7, pillow < 13 and pyarrow < 26, below what
# TensorFlow's side of ./.venv resolves to, so installing it there would
# downgrade the tested stack. tests/test_beam_encode.py runs the pipeline
# with this interpreter, and tests/test_runtime_install.py checks that the
# distribution runs there without TensorFlow or Keras.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv-beam/bin/python ]; then
  "$PYTHON" -m venv .venv-beam
  .venv-beam/bin/python -m pip install --quiet --upgrade pip
fi
# A regular (not editable) install: what a serving machine gets. Reinstalled
# on every run so that it is this checkout's code.
.venv-beam/bin/python -m pip uninstall --quiet --yes keras-mlh 2>/dev/null || true
.venv-beam/bin/python -m pip install --quiet --force-reinstall --no-deps ./export
.venv-beam/bin/python -m pip install --quiet "./export[beam]"

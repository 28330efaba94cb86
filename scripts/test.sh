#!/usr/bin/env bash
# Installs keras-mlh with its test extras into ./.venv, runs ruff and the test
# suite. Offline after the install: no dataset or weight downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
.venv/bin/ruff check .
# The Beam batch encoder's own environment (tests/test_beam_encode.py).
bash scripts/venv_beam.sh
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"

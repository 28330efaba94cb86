#!/usr/bin/env bash
# Installs keras-mlh with its test extras into ./.venv and runs the test suite.
# Offline after the install: no dataset or weight downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "keras-mlh needs Python >= 3.10 (set PYTHON=python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/ruff check .
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"

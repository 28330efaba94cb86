#!/usr/bin/env bash
# Installs keras-mlh with its test extras into ./.venv, runs ruff and the test
# suite. Offline after the install: no dataset or weight downloads.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
.venv/bin/ruff check .
.venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"

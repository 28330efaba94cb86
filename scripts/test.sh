#!/usr/bin/env bash
# Installs keras-mlh with its test extras into ./.venv, runs ruff and the test
# suite on TensorFlow. Offline after the install: no dataset or weight
# downloads.
#
# With no arguments (the CI run, .ci/run) it then runs the whole suite again
# on JAX and on PyTorch, each in its own environment (.venv-jax, .venv-torch:
# CPU builds, torch==2.13.0 from this machine's disk) with KERAS_BACKEND set
# per run, less the tests that a second backend cannot change (pyproject.toml
# describes each mark; tests/conftest.py applies the `_only` ones):
#   backend_independent  no Keras backend code in it (numpy/faiss serving,
#                        file IO, argument parsing, list files, docs);
#   end_to_end           a command, an example or a benchmark's --quick mode
#                        run end to end; the library calls it makes are
#                        tested in-process on every backend.
# Both run once, under TensorFlow. Tests marked `tensorflow_only` or
# `jax_only` skip themselves on the other backends.
# KERAS_MLH_BACKENDS="jax" runs only JAX; KERAS_MLH_BACKENDS="" none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
backends=""
[ $# -ne 0 ] || backends="${KERAS_MLH_BACKENDS-jax torch}"
# The backend environments install (mostly unpacking wheels) while ruff and
# the TensorFlow run go on; each logs to .venv-BACKEND.log.
installs=() names=()
# Any failure before the waits below ends this script: the installs end with it
# (setsid gave each its own process group, pip's children included).
trap 'for pid in "${installs[@]}"; do kill -- "-$pid" 2>/dev/null || true; done' EXIT
for backend in $backends; do
  case "$backend" in
    jax) packages="jax jaxlib" ;;
    torch) packages="torch==2.13.0" ;;
    *) echo "scripts/test.sh: unknown backend $backend (use jax or torch)" >&2; exit 2 ;;
  esac
  VENV=".venv-$backend" BASE_VENV=.venv BACKEND_PACKAGES="$packages" \
    setsid bash -euo pipefail scripts/_venv.sh > ".venv-$backend.log" 2>&1 &
  installs+=($!) names+=("$backend")
done
.venv/bin/ruff check .
# The Beam batch encoder's own environment (tests/test_beam_encode.py).
bash scripts/venv_beam.sh
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"

for i in "${!installs[@]}"; do
  wait "${installs[$i]}" || { cat ".venv-${names[$i]}.log" >&2; exit 1; }
done
# The suite compiles many small models once each: under JAX, XLA's LLVM
# optimizations cost more compile time than the steps they speed up save.
for backend in $backends; do
  echo "== KERAS_BACKEND=$backend"
  XLA_FLAGS="--xla_backend_optimization_level=0 ${XLA_FLAGS:-}" \
    KERAS_BACKEND="$backend" ".venv-$backend/bin/python" -m pytest -n 2 \
    --dist loadfile -q -m "not backend_independent and not end_to_end"
done

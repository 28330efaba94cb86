#!/usr/bin/env bash
# Installs keras-mlh with its test extras into ./.venv, runs ruff and the test
# suite on TensorFlow. Offline after the install: no dataset or weight
# downloads.
#
# With no arguments (the CI run, .ci/run) it then runs the model, loss, layer
# and backend tests ($BACKEND_TESTS) on JAX and on PyTorch, each in its own
# environment (.venv-jax, .venv-torch: CPU builds, torch==2.13.0 from this
# machine's disk) with KERAS_BACKEND set per run. Tests marked
# `tensorflow_only` or `jax_only` skip themselves on the other backends
# (tests/conftest.py). The whole suite on one backend, less the tests marked
# `backend_independent` (no Keras backend code in them):
#   KERAS_BACKEND=jax .venv-jax/bin/python -m pytest -m "not backend_independent"
# Not yet CI's default: measured, it does not fit CI's 15 minutes on 2 cores.
# KERAS_MLH_BACKENDS="jax" runs only JAX; KERAS_MLH_BACKENDS="" none.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh test
.venv/bin/ruff check .
# The Beam batch encoder's own environment (tests/test_beam_encode.py).
bash scripts/venv_beam.sh
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -n 2 --dist loadfile -q "$@"
[ $# -eq 0 ] || exit 0

BACKEND_TESTS="${BACKEND_TESTS:-tests/test_backends.py tests/test_mlh_objective.py
  tests/test_mixture_of_hash_experts.py tests/test_hash_layer.py
  tests/test_center_hash_loss.py tests/test_csq_hash_loss.py
  tests/test_pairwise_hash_loss.py tests/test_mutual_hash_loss.py
  tests/test_jax_data_parallel.py}"
for backend in ${KERAS_MLH_BACKENDS-jax torch}; do
  case "$backend" in
    jax) packages="jax jaxlib" ;;
    torch) packages="torch==2.13.0" ;;
    *) echo "scripts/test.sh: unknown backend $backend (use jax or torch)" >&2; exit 2 ;;
  esac
  (VENV=".venv-$backend" BASE_VENV=.venv BACKEND_PACKAGES="$packages"
   source scripts/_venv.sh)
  echo "== KERAS_BACKEND=$backend"
  # shellcheck disable=SC2086
  KERAS_BACKEND="$backend" ".venv-$backend/bin/python" -m pytest -n 2 \
    --dist loadfile -q $BACKEND_TESTS
done

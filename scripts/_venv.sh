# Sourced by the set-up scripts: makes a virtual environment (once) and
# installs keras-mlh into it with the extras named in $1 (e.g. "test"), from
# this checkout. $VENV names the folder (default .venv); $BACKEND_PACKAGES are
# installed beside it (e.g. "jax jaxlib" or "torch==2.13.0", CPU builds).
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "keras-mlh needs Python >= 3.10 (set PYTHON=python3.11)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e ".${1:+[$1]}" ${BACKEND_PACKAGES:-}
export TF_CPP_MIN_LOG_LEVEL=2

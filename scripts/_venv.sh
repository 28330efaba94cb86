# Sourced by the set-up scripts: makes ./.venv (once) and installs keras-mlh
# into it with the extras named in $1 (e.g. "test"), from this checkout.
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "keras-mlh needs Python >= 3.10 (set PYTHON=python3.11)" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".${1:+[$1]}"
export TF_CPP_MIN_LOG_LEVEL=2

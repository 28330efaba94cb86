# Sourced by the set-up scripts: makes a virtual environment (once) and
# installs keras-mlh-runtime (./export) and keras-mlh into it, with
# keras-mlh's extras named in $1 (e.g. "test"), from this checkout. $VENV names the folder (default .venv).
#
# A backend environment ($BASE_VENV set, e.g. VENV=.venv-jax BASE_VENV=.venv
# BACKEND_PACKAGES="jax jaxlib") sees the base environment's packages through a
# .pth file and installs only $BACKEND_PACKAGES itself: seconds instead of a
# second TensorFlow install. Its own packages come first on sys.path.
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-.venv}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
  echo "keras-mlh needs Python >= 3.10 (set PYTHON=python3.11)" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ -n "${BASE_VENV:-}" ]; then
  base_site=$("$BASE_VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  own_site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
  echo "import site; site.addsitedir('$base_site')" > "$own_site/keras_mlh_base_venv.pth"
  "$VENV/bin/python" -m pip install --quiet ${BACKEND_PACKAGES:-}
else
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # The runtime distribution first: keras-mlh depends on keras-mlh-runtime,
  # which is not on a package index.
  "$VENV/bin/python" -m pip install --quiet -e ./export
  "$VENV/bin/python" -m pip install --quiet -e ".${1:+[$1]}"
fi
export TF_CPP_MIN_LOG_LEVEL=2

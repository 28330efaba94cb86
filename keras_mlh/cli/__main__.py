"""`python -m keras_mlh.cli ARGS`: the `keras-mlh` command without the script."""

import sys

from keras_mlh.cli import main

sys.exit(main())

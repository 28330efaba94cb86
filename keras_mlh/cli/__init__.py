"""The `keras-mlh` command line: train, evaluate, encode, index and export.

`keras-mlh --help` shows examples, `keras-mlh COMMAND --help` each command's
options; `python -m keras_mlh.cli` is the same command. Each command module
declares its options in `add_arguments(parser)` and runs one library call in
`run(args)` (`keras_mlh.runs.train`, `keras_mlh.evaluation.evaluate_run`,
`keras_mlh.encoding`, `keras_mlh.export.export_encoder`,
`keras_mlh_runtime.index`), which
checks every input and output before slow work and writes atomically; see
`keras_mlh.cli.parser` for exit codes.
"""

from keras_mlh.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]

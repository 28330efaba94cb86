"""The `keras-mlh` command line: train, evaluate, encode, index and export.

`keras-mlh --help` shows examples, `keras-mlh COMMAND --help` each command's
options; `python -m keras_mlh.cli` is the same command. Exit codes: 0
success, 2 usage error (argparse), 1 any other error, reported as one line
on stderr (`keras-mlh: error: ...`); `--debug` shows the traceback instead.
TensorFlow and Keras are imported inside the commands that need them, so
`--help` and the index commands start fast. Ctrl-C exits 130 and SIGTERM
143, both cleaning up (no half-written output).

One module per concern: `parser` (the list of commands, `main`, error
handling), `options` (the value types and the options several commands
share), `errors`, `io` (reading models, arrays, images and codes files)
and one module per command (`train`,
`evaluate`, `encode`, `index`, `export`), each declaring its own options in
`add_arguments(parser)` and running in `run(args)`.

Files (all written under a temporary name and renamed into place through
`keras_mlh.files`, so a failed command never leaves a half-written output;
every output is checked by `keras_mlh.files.check_output` first: an existing
one is replaced only with `--overwrite`, an input of the command never):

- A run folder (`train --out`): `model.keras`, `history.json`, `split.npz`
  and `run.json`; see `keras_mlh.runs`, which also describes the staging
  folder `.keras-mlh-train-NAME` (the backup `train --resume` continues).
- Evaluation (`evaluate`, `RUN/eval` by default): `report.json` and PNG
  plots from `keras_mlh.evaluation.retrieval_report`.
- Images for `train --npz`: an `.npz` with `images` `(n, height, width[,
  channels])` raw pixels and `labels` (class ids `(n,)` or multi-hot `(n,
  classes)`); `x` and `y` are accepted too, and `class_names` optionally.
- Images for `encode`, `index search --model` and `export --sample-images`: an
  `.npy` array, an `.npz` with `images` (or `x`, or `x_query` as in a run's
  `split.npz`; `--key` names another; a file-backed split's images are read
  from their paths), or a folder of image files (searched recursively,
  resized to the model's input size, with the run's resize-and-crop recipe
  when the model lies in a run folder).
- List files for `train --lists`: `train.txt`, `test.txt`, `database.txt`,
  one `relative/path.jpg 0 1 0 ...` a line; see
  `keras_mlh.datasets.list_files`.
- Codes files (`encode`): `.npy` or `.npz`; see `keras_mlh.cli.encode`.
- An index (`index build`): one file, the faiss index with its settings and,
  for codes of image files, their paths (id -> path) used by `search`.
"""

from keras_mlh.cli.parser import build_parser, main

__all__ = ["build_parser", "main"]

"""`keras-mlh encode`: images -> a file of packed binary codes.

`keras_mlh.encoding.encode_file`; the format is
`keras_mlh_runtime.code_files`'s: `.npy` output holds the packed uint8
codes `(n, bits / 8)` only; `.npz` output holds `codes` (packed), `ids`
(int64: the input's `ids`, else 0..n-1), `bits`, and `paths` (folder input)
or `labels` (the input's `labels`/`y`, or `y_query` beside `x_query`).
"""

import os

from keras_mlh.cli import options
from keras_mlh.cli.io import quiet_tensorflow
from keras_mlh.encoding import encode_file

DESCRIPTION = (
    "Encodes images with a trained model into packed binary codes. INPUT is an "
    ".npy array, an .npz (images under `images`, `x` or --key; `ids` and "
    "`labels`/`y` are carried over) or a folder of image files (recursive, "
    "resized to the model's input size). OUTPUT .npy holds the packed uint8 "
    "codes (n, bits/8); OUTPUT .npz holds codes, ids, bits and paths (folder "
    "input) or labels."
)
EPILOG = """examples:
  keras-mlh encode runs/mnist/model.keras images.npz codes.npz
  keras-mlh encode runs/photos/model.keras photos/ codes.npz"""


def add_arguments(parser):
    """Declares the options of `keras-mlh encode` on `parser`.

    Args:
        parser: the `encode` command's `argparse.ArgumentParser`.
    """
    options.add_quiet(parser)
    options.add_batch_size(parser)
    options.add_image_key(parser)
    parser.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    parser.add_argument("input", metavar="INPUT", help=".npy, .npz or folder of images")
    parser.add_argument("output", metavar="OUTPUT", help="codes file, .npy or .npz")
    options.add_overwrite(parser, "replace an existing OUTPUT")
    parser.set_defaults(handler=run)


def run(args):
    """Encodes `args.input` with `args.model` into the codes file `args.output`.

    Args:
        args: the parsed `encode` options.

    Returns:
        0, after printing how many codes of how many bits were written.
    """
    quiet_tensorflow()
    count, bits = encode_file(
        args.model,
        args.input,
        args.output,
        key=args.key,
        batch_size=args.batch_size,
        verbose=args.verbose,
        overwrite=args.overwrite,
    )
    size = bits // 8
    print(
        f"Wrote {count} {bits}-bit codes ({size} byte{'s' if size > 1 else ''} "
        f"each) to {os.path.abspath(args.output)}"
    )
    return 0

"""`keras-mlh encode`: `keras_mlh.encoding.encode_file`, printed."""

import os

from keras_mlh.cli import options
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
    options.add_quiet(parser)
    options.add_batch_size(parser)
    options.add_image_key(parser)
    parser.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    parser.add_argument("input", metavar="INPUT", help=".npy, .npz or folder of images")
    parser.add_argument("output", metavar="OUTPUT", help="codes file, .npy or .npz")
    options.add_overwrite(parser, "replace an existing OUTPUT")
    parser.set_defaults(handler=run)


def run(args):
    """Encodes INPUT into OUTPUT; prints how many codes of how many bits."""
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

"""`keras-mlh encode`: images -> a file of packed binary codes.

`.npy` output holds the packed uint8 codes `(n, bits / 8)` only; `.npz`
output holds `codes` (packed), `ids` (int64: the input's `ids`, else
0..n-1), `bits`, and `paths` (folder input) or `labels` (the input's
`labels`/`y`, or `y_query` beside `x_query`). `keras-mlh index build` reads
either.
"""

import os

import numpy as np

from keras_mlh import files
from keras_mlh.cli import options
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import (
    encode_images,
    load_model,
    open_images,
    require_images,
    require_model,
    save_npy,
    save_npz,
)
from keras_mlh_runtime.codes import pack_codes

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
    output = args.output
    if not output.lower().endswith((".npy", ".npz")):
        raise CLIError(
            f"The codes file must end in .npy (packed codes only) or .npz (codes, "
            f"ids, paths); got {output!r}."
        )
    require_model(args.model)
    require_images(args.input)
    files.check_output(
        output,
        inputs=[args.model, args.input],
        overwrite=args.overwrite,
        # Codes written among the images would be read as part of them.
        not_inside=[args.input] if os.path.isdir(args.input) else [],
    )
    # Entered first: an unwritable output fails before the model is loaded.
    with files.atomic_path(output, make_folders=True) as temp:
        model = load_model(args.model)
        images = open_images(
            args.input, model.image_shape, key=args.key, model_path=args.model
        )
        packed = pack_codes(encode_images(model, images, args.batch_size, args.verbose))
        if output.lower().endswith(".npy"):
            save_npy(temp, packed)
        else:
            _save_codes(temp, packed, images, model.bits)
    print(
        f"Wrote {len(packed)} {model.bits}-bit codes ({packed.shape[1]} "
        f"byte{'s' if packed.shape[1] > 1 else ''} each) "
        f"to {os.path.abspath(output)}"
    )
    return 0


def _save_codes(path, packed, images, bits):
    """The `.npz` codes file: codes with their ids, bits and paths or labels."""
    ids = np.arange(len(packed)) if images.ids is None else images.ids
    extra = {}
    if images.paths is not None:
        extra["paths"] = images.paths
    if images.labels is not None:
        extra["labels"] = images.labels
    save_npz(path, codes=packed, ids=ids.astype(np.int64), bits=np.int64(bits), **extra)

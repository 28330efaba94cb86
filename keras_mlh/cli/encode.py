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
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import (
    encode_images,
    load_model,
    open_images,
    require_model,
    save_npy,
    save_npz,
)
from keras_mlh.codes import pack_codes


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
    if not os.path.exists(args.input):
        raise CLIError(f"Images not found: {args.input!r}.")
    files.check_output(
        output, inputs=[args.model, args.input], overwrite=args.overwrite
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

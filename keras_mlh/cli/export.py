"""`keras-mlh export`: the deployable encoder as SavedModel and/or ONNX.

A thin layer over `keras_mlh.export.write_encoder` (`export_encoder` for a
folder checked up front), which writes, validates and moves the folder into
place; this checks the model file and the folder once, before the slow
loading, reads the sample images and prints the validation results.
"""

import logging
import os

import numpy as np

from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import (
    load_model,
    open_images,
    quiet_tensorflow,
    require_model,
)
from keras_mlh.export.exporter import check_out_dir

SAMPLE_CHUNK = 256


def run(args):
    """Exports the encoder of `args.model` into `args.out_dir`.

    Args:
        args: the parsed `export` options: formats, opset, atol, validation
            and its sample images, overwrite.

    Returns:
        0, after printing how closely each export matches Keras.
    """
    formats = [
        name
        for name, chosen in (("saved_model", args.saved_model), ("onnx", args.onnx))
        if chosen
    ] or ["saved_model", "onnx"]
    require_model(args.model)
    # Checked here, once, before the slow model loading; `write_encoder`
    # trusts it.
    out = check_out_dir(
        args.out_dir,
        args.overwrite,
        overwrite_flag="--overwrite",
        inputs=[args.model, args.sample_images],
    )
    if args.sample_images and not os.path.exists(args.sample_images):
        raise CLIError(f"Sample images not found: {args.sample_images!r}.")
    model = load_model(args.model)
    samples = _samples(args, model) if args.sample_images else None
    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    quiet_tensorflow(tensorflow=True)  # the SavedModel needs it on any backend
    from keras_mlh.export import write_encoder

    metadata = write_encoder(
        model,
        out,
        formats=formats,
        opset=args.opset,
        atol=args.atol,
        validate=not args.no_validate,
        sample_images=samples,
    )
    print(f"Exported the {model.bits}-bit encoder ({', '.join(formats)}) to {out}")
    _print_validation(metadata.get("validation"), formats)
    return 0


def _samples(args, model):
    """The first `--max-samples` images of `--sample-images`."""
    images = open_images(
        args.sample_images,
        model.image_shape,
        key=args.key,
        what="Sample images",
        model_path=args.model,
    )
    batches, count = [], 0
    for batch in images.chunks(min(args.max_samples, SAMPLE_CHUNK)):
        batches.append(batch[: args.max_samples - count])
        count += len(batches[-1])
        if count >= args.max_samples:
            break
    return np.concatenate(batches)


def _print_validation(validation, formats):
    """One line per format: how closely the export matches Keras."""
    if not validation:
        print("  not validated (--no-validate)")
        return
    for name in formats:
        check = validation.get(name) or {}
        parts = []
        if "max_abs_diff" in check:
            parts.append(f"max |embedding - Keras| = {check['max_abs_diff']:.2e}")
        if "bit_agreement" in check:
            parts.append(f"bits agreeing {100 * check['bit_agreement']:.2f}%")
        if parts:
            images = validation.get("num_images")
            on = f" on {images} images" if images else ""
            print(f"  {name}: {', '.join(parts)}{on}")

"""`keras-mlh export`: the deployable encoder as SavedModel and/or ONNX.

A thin layer over `keras_mlh.export.write_encoder` (`export_encoder` for a
folder checked up front), which writes, validates and moves the folder into
place; this checks the model file and the folder once, before the slow
loading, reads the sample images and prints the validation results.
"""

import logging

import numpy as np

from keras_mlh.cli import options
from keras_mlh.cli.io import (
    load_model,
    quiet_tensorflow,
    require_images,
    require_model,
)
from keras_mlh.cli.options import default_of
from keras_mlh.encoding import open_images, run_resize_to
from keras_mlh.export import exporter
from keras_mlh.export.exporter import MIN_OPSET, check_out_dir

SAMPLE_CHUNK = 256
MAX_SAMPLES = 256  # --sample-images read at most

DESCRIPTION = (
    "Exports the deployable encoder of a trained model (raw images in; "
    "embedding, ±1 codes and packed codes out) and checks the exports against "
    "Keras. Without --onnx or --saved-model, both are written."
)
EPILOG = """examples:
  keras-mlh export runs/mnist/model.keras encoder/
  keras-mlh export m.keras encoder/ --onnx --sample-images runs/mnist/split.npz"""


def add_arguments(parser):
    """Declares the options of `keras-mlh export` on `parser`.

    Args:
        parser: the `export` command's `argparse.ArgumentParser`.
    """
    parser.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    parser.add_argument("--onnx", action="store_true", help="write model.onnx")
    parser.add_argument(
        "--saved-model", action="store_true", help="write a TensorFlow SavedModel"
    )
    # The exporter's own function (keras_mlh.export.export_encoder is what runs).
    options.add_number(
        parser,
        "--opset",
        default_of(exporter.export_encoder, "opset"),
        f"ONNX opset, >= {MIN_OPSET}",
        type=int,
    )
    options.add_number(
        parser,
        "--atol",
        default_of(exporter.export_encoder, "atol"),
        "largest allowed embedding difference to Keras",
        type=options.positive_float,
    )
    parser.add_argument(
        "--no-validate",
        action="store_true",
        help="skip checking the exports against Keras",
    )
    parser.add_argument(
        "--sample-images",
        metavar="FILE",
        help="real images for the validation (.npy, .npz, folder); default: "
        "random pixels",
    )
    options.add_image_key(parser, "the sample images")
    options.add_number(
        parser, "--max-samples", MAX_SAMPLES, "sample images used at most"
    )
    options.add_overwrite(parser, "replace a non-empty OUT_DIR")
    parser.set_defaults(handler=run)


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
    if args.sample_images:
        require_images(args.sample_images, "Sample images")
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
        # The run's resize-then-crop recipe, so the runtime reads files as
        # evaluation does.
        resize_to=run_resize_to(args.model),
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

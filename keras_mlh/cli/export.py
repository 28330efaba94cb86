"""`keras-mlh export`: `keras_mlh.export.export_encoder`, printed."""

import os

from keras_mlh.cli import options
from keras_mlh.cli.options import default_of
from keras_mlh.encoding import run_resize_to
from keras_mlh.export import exporter

DESCRIPTION = (
    "Exports the deployable encoder of a trained model (raw images in; "
    "embedding, ±1 codes and packed codes out) and checks the exports against "
    "Keras. Without --onnx or --saved-model, both are written."
)
EPILOG = """examples:
  keras-mlh export runs/mnist/model.keras encoder/
  keras-mlh export m.keras encoder/ --onnx --sample-images runs/mnist/split.npz"""


def add_arguments(parser):
    arg, default = parser.add_argument, lambda n: default_of(exporter.export_encoder, n)
    arg("model", metavar="MODEL", help="a .keras MLH model")
    arg("out_dir", metavar="OUT_DIR", help="folder to create")
    arg("--onnx", action="store_true", help="write model.onnx")
    arg("--saved-model", action="store_true", help="write a TensorFlow SavedModel")
    opset = default("opset")
    options.add_number(parser, "--opset", opset, f"ONNX opset, >= {opset}", type=int)
    help, type = "largest allowed embedding difference to Keras", options.positive_float
    options.add_number(parser, "--atol", default("atol"), help, type=type)
    arg("--no-validate", action="store_true", help="skip checking the exports")
    help = "real images for the validation (.npy, .npz, folder); default: random pixels"
    arg("--sample-images", metavar="FILE", help=help)
    options.add_image_key(parser, "the sample images")
    help = "sample images used at most"
    options.add_number(parser, "--max-samples", default("max_samples"), help)
    options.add_overwrite(parser, "replace a non-empty OUT_DIR")
    parser.set_defaults(handler=run)


def run(args):
    """Exports the encoder; prints how closely each export matches Keras."""
    chosen = {"saved_model": args.saved_model, "onnx": args.onnx}
    formats = [name for name, wanted in chosen.items() if wanted] or list(chosen)
    metadata = exporter.export_encoder(
        args.model,
        args.out_dir,
        formats=formats,
        opset=args.opset,
        atol=args.atol,
        validate=not args.no_validate,
        sample_images=args.sample_images,
        overwrite=args.overwrite,
        # The run's resize-then-crop recipe: the runtime reads files as
        # evaluation does.
        resize_to=run_resize_to(args.model),
        sample_key=args.key,
        max_samples=args.max_samples,
        overwrite_flag="--overwrite",
    )
    print(
        f"Exported the {metadata['bits']}-bit encoder ({', '.join(formats)}) to "
        f"{os.path.abspath(args.out_dir)}"
    )
    validation = metadata["validation"]
    if not validation:
        print("  not validated (--no-validate)")
    for name in formats if validation else ():
        check = validation[name]
        print(
            f"  {name}: max |embedding - Keras| = {check['max_abs_diff']:.2e}, bits "
            f"agreeing {100 * check['bit_agreement']:.2f}% on "
            f"{validation['num_images']} images"
        )
    return 0

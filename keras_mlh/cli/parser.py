"""The `keras-mlh` argument parser and entry point: `build_parser`, `main`.

Only argparse and the version are imported here, so `keras-mlh --help`
starts fast: each command's module (and with it numpy, TensorFlow or faiss)
is imported by `main` once the command is known. Exit codes: 0 success, 2
usage error (argparse), 1 any other error, shown as one line on stderr
(`keras-mlh: error: ...`); `--debug` shows the traceback instead, 130 on
Ctrl-C, 143 on SIGTERM (which cleans up as Ctrl-C does).
"""

import argparse
import importlib
import signal
import sys
import threading

from keras_mlh.cli.errors import one_line

PROG = "keras-mlh"
EXAMPLES = """examples:
  keras-mlh train --out runs/mnist                 # offline MNIST-5k digits
  keras-mlh evaluate runs/mnist                    # mAP, P@K, PR data, plots
  keras-mlh export runs/mnist/model.keras encoder/ # SavedModel + ONNX
  keras-mlh encode runs/mnist/model.keras images.npz codes.npz
  keras-mlh index build codes.npz db.index
  keras-mlh index search db.index queries.npz -k 10

`keras-mlh COMMAND --help` describes each command."""
# Kept in sync with keras_mlh.models.mlh.MODES and
# keras_mlh.models.backbones.APPLICATIONS (tested), without importing Keras.
MODES = ("mlh", "center", "pairwise", "mlh_no_moh", "mlh_no_mutual")
BACKBONES = (
    "small",
    "resnet50",
    "efficientnetb0",
    "mobilenetv3small",
    "mobilenetv3large",
    "convnexttiny",
)
KINDS = ("flat", "hnsw", "ivf")
MAX_BITS = 4096  # keras_mlh.codes.MAX_BITS (tested)


# ------------------------------------------------------------ value types
def _image_size(text):
    """`"64"` or `"64x48"` (height x width) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SIZE or HEIGHTxWIDTH, e.g. 64 or 64x48; got {text!r}"
        )
    return size


def _num_queries(text):
    try:
        value = float(text) if "." in text else int(text)
    except ValueError:
        value = None
    if value is None or value <= 0 or (isinstance(value, float) and value >= 1):
        raise argparse.ArgumentTypeError(
            f"expected a count (e.g. 1000) or a fraction in (0, 1) (e.g. 0.2); "
            f"got {text!r}"
        )
    return value


def _int_at_least(minimum, expected):
    """An argparse type: integers >= `minimum`, `expected` names them."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


_positive_int = _int_at_least(1, "a positive integer")


def _bits(text):
    # keras_mlh.codes.validate_bits's rule, without importing numpy for --help.
    value = _positive_int(text)
    if value % 8 or value > MAX_BITS:
        raise argparse.ArgumentTypeError(
            f"expected a positive multiple of 8 (codes are packed into bytes) up "
            f"to {MAX_BITS}, e.g. 16, 32 or 64; got {text!r}"
        )
    return value


_non_negative_int = _int_at_least(0, "an integer >= 0")


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}")
    return value


def _k_value(text):
    if text.lower() == "all":
        return None
    return _positive_int(text)


# ----------------------------------------------------------------- parser
class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions, keeps the example epilogs as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser():
    """The argument parser of `keras-mlh`, every command and option included.

    Each command stores its function as `handler`, a `"module:function"`
    name in `keras_mlh.cli` that `main` imports only when it runs.

    Returns:
        An `argparse.ArgumentParser`.
    """
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument(
        "-q",
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        default=1,
        help="no progress bars",
    )
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument(
        "--batch-size",
        type=_positive_int,
        default=256,
        help="inference batch size (default: 256)",
    )
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument(
        "--key",
        help="array holding the images in an .npz (default: images, x or x_query)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mutual Learning for Hashing (MLH): train hashing models, "
        "evaluate them, encode images into binary codes, search them, export "
        "encoders.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    from keras_mlh.version import __version__

    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # train
    train = commands.add_parser(
        "train",
        parents=[common, quiet],
        formatter_class=_Formatter,
        help="train an MLH model into a run folder",
        description="Trains an MLH model with the package's default recipe (Adam, "
        "cosine decay) and writes a run folder: model.keras, history.json, "
        "split.npz (the query/database split evaluate uses) and run.json. "
        "Data: the offline MNIST-5k digits by default, or --npz, --folder, "
        "--lists, --tfds. Folders and list files are streamed from disk.",
        epilog="examples:\n"
        "  keras-mlh train --out runs/mnist --bits 32\n"
        "  keras-mlh train --folder photos/ --image-size 96 --out runs/photos\n"
        "  keras-mlh train --npz data.npz --epochs 30 --out runs/mine\n"
        "  keras-mlh train --lists lists/cifar10 --image-root images/ --out runs/c\n"
        "  keras-mlh train --tfds cifar10 --limit 10000 --out runs/cifar",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument(
        "--npz",
        metavar="FILE",
        help="an .npz with `images` (n, h, w[, c]) raw pixels and `labels` (class "
        "ids or multi-hot); `x`/`y` also accepted, `class_names` optional",
    )
    source.add_argument(
        "--folder",
        metavar="DIR",
        help="a folder with one subfolder of images per class",
    )
    source.add_argument(
        "--lists",
        metavar="DIR",
        help="a folder of list files, train.txt, test.txt (the queries) and "
        "database.txt, one 'relative/path.jpg 0 1 0 ...' (multi-hot labels) a "
        "line, as HashNet and DeepHash-pytorch distribute them; images are "
        "streamed from disk",
    )
    source.add_argument(
        "--tfds",
        metavar="NAME",
        help="a tensorflow-datasets name, e.g. cifar10 (downloads on first use)",
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="run folder to create (default: runs/run-DATE-TIME)",
    )
    train.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier run folder at --out, and discard an interrupted "
        "run of it",
    )
    train.add_argument(
        "--resume",
        metavar="RUN",
        help="continue the interrupted run whose --out was RUN from its last "
        "completed epoch, with that run's settings",
    )
    train.add_argument(
        "--bits", type=_bits, default=32, help="code length (default: 32)"
    )
    train.add_argument("--epochs", type=_positive_int, default=None, help="default: 15")
    train.add_argument("--mode", choices=MODES, default="mlh", help="default: mlh")
    train.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="small",
        help="small (SmallConvBackbone, default) or a keras.applications model "
        "(3-channel images)",
    )
    train.add_argument(
        "--backbone-weights",
        choices=("none", "imagenet"),
        default="none",
        help="imagenet downloads pretrained weights (needs network); a named "
        "backbone gets raw 0..255 pixels and its own ImageNet preprocessing "
        "(default: none)",
    )
    train.add_argument(
        "--augment",
        action="store_true",
        help="random translations and rotations during training",
    )
    train.add_argument(
        "--learning-rate", type=_positive_float, default=None, help="default: 1e-3"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=64, help="default: 64"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the split and the weights"
    )
    train.add_argument(
        "--num-queries",
        type=_num_queries,
        default=None,
        help="query images held out: a count or a fraction (default: 0.2; with "
        "--tfds, a count from the query split, default 1000)",
    )
    train.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="train on N images (quick trials): a seeded random sample of mnist5k "
        "or --npz data, the first N examples of a --tfds split",
    )
    train.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        metavar="SIZE",
        help="size of the images the model gets, for --folder and --lists "
        "(default: 64, or 224 with a named backbone) and --tfds (default: 32): "
        "SIZE or HEIGHTxWIDTH",
    )
    train.add_argument(
        "--resize-size",
        type=_image_size,
        default=None,
        metavar="SIZE",
        help="for --folder and --lists: resize to SIZE, then crop --image-size "
        "(random in training, central at evaluation and export). Default: 256 "
        "with a named backbone (then --image-size defaults to 224), none with "
        "the small one",
    )
    train.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="random horizontal flips of --folder and --lists training images "
        "(default: on with a named backbone, off with the small one)",
    )
    train.add_argument(
        "--image-root",
        metavar="ROOT",
        help="the folder the paths of --lists resolve against (default: DIR)",
    )
    train.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale"),
        default="rgb",
        help="how --folder and --lists images are read (default: rgb)",
    )
    train.add_argument("--tfds-train-split", default="train", metavar="SPLIT")
    train.add_argument("--tfds-query-split", default="test", metavar="SPLIT")
    train.add_argument("--tfds-data-dir", default=None, metavar="DIR")
    train.add_argument(
        "--val-split",
        type=_num_queries,
        default=None,
        metavar="F",
        help="hold F training images out (a count or a fraction; seeded, "
        "stratified) as validation queries searched against the rest of the "
        "training set; their val mAP picks the epoch kept. The test queries "
        "never pick anything",
    )
    train.add_argument(
        "--unseen-classes",
        metavar="IDS",
        help="comma-separated class ids or names left out of training (the "
        "queries and database keep them); evaluate then reports seen/unseen mAP",
    )
    train.add_argument(
        "--val-every",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="validation mAP (into history.json) every N epochs, 0 for never "
        "(default: 5)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="Keras fit verbosity: 1 progress bar (default), 2 one line per "
        "epoch, 0 silent (as -q)",
    )
    train.set_defaults(handler="train:run", parser=train)

    # evaluate
    evaluate = commands.add_parser(
        "evaluate",
        parents=[common, quiet, batch],
        formatter_class=_Formatter,
        help="mAP, precision@K, PR data and plots of a run",
        description="Encodes the queries and the database of a run and writes "
        "report.json (mAP@K, precision/recall@K, precision within a Hamming "
        "radius, the precision-recall curve over radii) and PNG plots (PR curve, "
        "P@K, bit balance, training history).",
        epilog="examples:\n"
        "  keras-mlh evaluate runs/mnist\n"
        "  keras-mlh evaluate runs/mnist --k 1000 --out eval-1000\n"
        "  keras-mlh evaluate --model m.keras --data split.npz --out eval",
    )
    evaluate.add_argument(
        "run", nargs="?", metavar="RUN", help="run folder from `keras-mlh train`"
    )
    evaluate.add_argument(
        "--model", metavar="FILE", help="model file (default: RUN/model.keras)"
    )
    evaluate.add_argument(
        "--data",
        metavar="FILE",
        help="an .npz with x_query, y_query, x_database, y_database "
        "(default: RUN/split.npz)",
    )
    evaluate.add_argument(
        "--out",
        metavar="DIR",
        help="output folder (default: RUN/eval, or ./eval without RUN)",
    )
    evaluate.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the report and plots of an earlier evaluation in --out",
    )
    evaluate.add_argument(
        "--k",
        type=_k_value,
        default=None,
        help="mAP cut-off: a number or all (default: all)",
    )
    evaluate.add_argument(
        "--precision-at",
        type=_positive_int,
        nargs="+",
        default=[1, 10, 50, 100, 500, 1000],
        metavar="K",
        help="cut-offs of precision@K and recall@K (default: 1 10 50 100 500 1000)",
    )
    evaluate.add_argument(
        "--radius",
        type=_non_negative_int,
        default=2,
        help="Hamming radius of the precision-within-radius (default: 2)",
    )
    evaluate.add_argument(
        "--tie-breaking",
        choices=("stable", "average"),
        default="stable",
        help="order of items at equal distance (default: stable)",
    )
    evaluate.set_defaults(handler="evaluate:run", parser=evaluate)

    # encode
    encode = commands.add_parser(
        "encode",
        parents=[common, quiet, batch, key],
        formatter_class=_Formatter,
        help="images -> packed binary codes",
        description="Encodes images with a trained model into packed binary codes. "
        "INPUT is an .npy array, an .npz (images under `images`, `x` or --key; "
        "`ids` and `labels`/`y` are carried over) or a folder of image files "
        "(recursive, resized to the model's input size). OUTPUT .npy holds the "
        "packed uint8 codes (n, bits/8); OUTPUT .npz holds codes, ids, bits and "
        "paths (folder input) or labels.",
        epilog="examples:\n"
        "  keras-mlh encode runs/mnist/model.keras images.npz codes.npz\n"
        "  keras-mlh encode runs/photos/model.keras photos/ codes.npz",
    )
    encode.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    encode.add_argument("input", metavar="INPUT", help=".npy, .npz or folder of images")
    encode.add_argument("output", metavar="OUTPUT", help="codes file, .npy or .npz")
    encode.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUTPUT"
    )
    encode.set_defaults(handler="encode:run")

    # index
    index = commands.add_parser(
        "index",
        parents=[common],
        formatter_class=_Formatter,
        help="build and search Hamming indexes",
        description="Build a Hamming index of codes (faiss) and search it.",
        epilog="examples:\n"
        "  keras-mlh index build codes.npz db.index\n"
        "  keras-mlh index search db.index queries.npz -k 10\n"
        "  keras-mlh index search db.index photos/ --model m.keras --json hits.json",
    )
    index_commands = index.add_subparsers(
        dest="index_command", metavar="COMMAND", required=True
    )
    build = index_commands.add_parser(
        "build",
        parents=[common],
        formatter_class=_Formatter,
        help="codes file -> saved index",
        description="Builds a HammingIndex from a codes file of `keras-mlh encode` "
        "(or any .npy/.npz of packed uint8 or ±1 codes, with optional `ids`) and "
        "saves it with its JSON sidecar (INDEX.json) and, when the codes came "
        "from image files, their paths (INDEX.paths.json).",
        epilog="example:\n  keras-mlh index build codes.npz db.index --kind hnsw",
    )
    build.add_argument(
        "codes",
        metavar="CODES",
        nargs="+",
        help="codes files, .npy or .npz (several are concatenated in order, e.g. "
        "the shards of keras_mlh_runtime.beam_encode)",
    )
    build.add_argument("index", metavar="INDEX", help="index file to write")
    build.add_argument(
        "--kind",
        choices=KINDS,
        default="flat",
        help="flat (exact, default), hnsw or ivf (approximate)",
    )
    build.add_argument(
        "--nlist", type=_positive_int, default=1024, help="IVF lists (default: 1024)"
    )
    build.add_argument(
        "--nprobe",
        type=_positive_int,
        default=8,
        help="IVF lists visited per query (default: 8)",
    )
    build.add_argument(
        "--hnsw-neighbors",
        type=_positive_int,
        default=32,
        help="HNSW graph degree (default: 32)",
    )
    build.add_argument(
        "--ef-search",
        type=_positive_int,
        default=128,
        help="HNSW candidates per query, at least k (default: 128; see "
        "benchmarks/results/ann.md for recall and speed)",
    )
    build.add_argument(
        "--ef-construction",
        type=_positive_int,
        default=40,
        help="HNSW candidates while building (default: 40)",
    )
    build.add_argument(
        "--overwrite", action="store_true", help="replace an existing index"
    )
    build.set_defaults(handler="index:build")

    search = index_commands.add_parser(
        "search",
        parents=[common, quiet, batch, key],
        formatter_class=_Formatter,
        help="query codes or images -> nearest ids and distances",
        description="Searches an index with query codes (a codes file) or with "
        "images (.npy, .npz or a folder, encoded with --model). Prints the "
        "nearest ids (or paths) with their Hamming distances, and writes them as "
        "JSON with --json.",
        epilog="examples:\n"
        "  keras-mlh index search db.index queries.npz -k 5\n"
        "  keras-mlh index search db.index query_images/ --model m.keras\n"
        "  keras-mlh index search db.index queries.npz --radius 2 --json hits.json",
    )
    search.add_argument("index", metavar="INDEX", help="index from `index build`")
    search.add_argument(
        "queries", metavar="QUERIES", help="codes file, or images with --model"
    )
    search.add_argument(
        "-k", type=_positive_int, default=10, help="neighbours per query (default: 10)"
    )
    search.add_argument(
        "--radius",
        type=_non_negative_int,
        default=None,
        help="return every item within this Hamming distance instead of the top k "
        "(flat and ivf indexes)",
    )
    search.add_argument(
        "--nprobe",
        type=_positive_int,
        default=None,
        help="IVF lists visited per query (default: the index's)",
    )
    search.add_argument(
        "--ef-search",
        type=_positive_int,
        default=None,
        help="HNSW candidates per query (default: the index's)",
    )
    search.add_argument("--model", metavar="FILE", help="encode image queries with it")
    search.add_argument("--json", metavar="FILE", help="write the results as JSON")
    search.add_argument(
        "--overwrite", action="store_true", help="replace an existing --json file"
    )
    search.add_argument(
        "--show",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="print the results of the first N queries (default: 10)",
    )
    search.set_defaults(handler="index:search")

    # export
    export = commands.add_parser(
        "export",
        parents=[common],
        formatter_class=_Formatter,
        help="export the encoder as SavedModel and/or ONNX",
        description="Exports the deployable encoder of a trained model (raw images "
        "in; embedding, ±1 codes and packed codes out) and checks the exports "
        "against Keras. Without --onnx or --saved-model, both are written.",
        epilog="examples:\n"
        "  keras-mlh export runs/mnist/model.keras encoder/\n"
        "  keras-mlh export m.keras encoder/ --onnx --sample-images "
        "runs/mnist/split.npz",
    )
    export.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    export.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    export.add_argument("--onnx", action="store_true", help="write model.onnx")
    export.add_argument(
        "--saved-model", action="store_true", help="write a TensorFlow SavedModel"
    )
    export.add_argument(
        "--opset", type=int, default=17, help="ONNX opset, >= 17 (default: 17)"
    )
    export.add_argument(
        "--atol",
        type=_positive_float,
        default=1e-4,
        help="largest allowed embedding difference to Keras (default: 1e-4)",
    )
    export.add_argument(
        "--no-validate",
        action="store_true",
        help="skip checking the exports against Keras",
    )
    export.add_argument(
        "--sample-images",
        metavar="FILE",
        help="real images for the validation (.npy, .npz, folder); default: "
        "random pixels",
    )
    export.add_argument(
        "--key",
        help="array holding the sample images in an .npz (default: images, x or "
        "x_query)",
    )
    export.add_argument(
        "--max-samples",
        type=_positive_int,
        default=256,
        help="sample images used at most (default: 256)",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty OUT_DIR"
    )
    export.set_defaults(handler="export:run")
    return parser


def main(argv=None):
    """Runs the `keras-mlh` command line.

    Args:
        argv: the arguments after the program name; `None` reads
            `sys.argv` (and records the command in a run's `run.json`).

    Returns:
        The exit code: 0 success, 1 error, 130 interrupted (Ctrl-C), 143
        terminated (SIGTERM). Usage errors
        and `--help` exit through `SystemExit` (2 and 0), as argparse does.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    args.from_command_line = argv is None
    args.argv = list(sys.argv[1:] if argv is None else argv)
    debug = getattr(args, "debug", False)
    if debug:
        from keras_mlh.cli import io

        io.show_startup_logs = True  # TensorFlow's start-up lines too
    previous = _on_sigterm(_terminate)
    try:
        return _handler(args.handler)(args) or 0
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        sys.stdout.flush()
        print(
            f"{PROG}: {interrupt.args[0] if interrupt.args else 'interrupted'}",
            file=sys.stderr,
        )
        return 143 if isinstance(interrupt, Terminated) else 130
    except Exception as error:
        if debug:
            raise
        sys.stdout.flush()  # the error line comes after what was printed
        print(f"{PROG}: error: {one_line(error)}", file=sys.stderr)
        return 1
    finally:
        _on_sigterm(previous)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that every command cleans up the same way."""


def _terminate(signum, frame):
    raise Terminated("terminated (SIGTERM)")


def _on_sigterm(handler):
    """Sets the SIGTERM handler (main thread only); returns the previous one."""
    if handler is None or threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, handler)


def _handler(name):
    """`"train:run"` -> the function `run` of `keras_mlh.cli.train`."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(f"keras_mlh.cli.{module}"), function)

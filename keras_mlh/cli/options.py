"""What the `keras-mlh` commands share on their command lines.

The value types of the options, the help formatter, and the options several
commands take, each declared once. Defaults come from the library
(`default_of`, `INFERENCE_BATCH_SIZE`), so the command line cannot drift
from it. Nothing here imports Keras or TensorFlow, so `keras-mlh --help`
stays fast.
"""

import argparse
import inspect

from keras_mlh.encoding import INFERENCE_BATCH_SIZE
from keras_mlh_runtime.codes import validate_bits

PROG = "keras-mlh"


def default_of(function, name):
    """The default value of the parameter `name` of `function` (or class).

    Example:
    >>> def f(x, k=10):
    ...     return x
    >>> default_of(f, "k")
    10
    """
    default = inspect.signature(function).parameters[name].default
    if default is inspect.Parameter.empty:
        raise TypeError(f"{function.__qualname__}({name}) has no default.")
    return default


# ------------------------------------------------------------ value types
def _checked(convert, valid, expected):
    """An argparse type: `convert(text)` when `valid` of it, else an error."""

    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not valid(value):
            raise argparse.ArgumentTypeError(f"expected {expected}; got {text!r}")
        return value

    return parse


def _size(text):
    size = tuple(int(part) for part in text.lower().split("x"))
    return size * 2 if len(size) == 1 else size


positive_int = _checked(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _checked(float, lambda v: v > 0, "a number > 0")
# "64" or "64x48" (height x width) -> (height, width).
image_size = _checked(
    _size,
    lambda s: len(s) == 2 and min(s) >= 1,
    "SIZE or HEIGHTxWIDTH, e.g. 64 or 64x48",
)
# A count ("1000") or a fraction in (0, 1) ("0.2") of the images.
count_or_fraction = _checked(
    lambda text: float(text) if "." in text else int(text),
    lambda v: v > 0 and (isinstance(v, int) or v < 1),
    "a count (e.g. 1000) or a fraction in (0, 1) (e.g. 0.2)",
)


def bits(text):
    """A code length: `keras_mlh_runtime.codes.validate_bits`'s rule."""
    try:
        return validate_bits(positive_int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}; got {text!r}") from None


def cutoff(text):
    """A ranking cut-off: a positive integer, or `all` (`None`)."""
    return None if text.lower() == "all" else positive_int(text)


# ------------------------------------------------------------ help, options
class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions, keeps the example epilogs as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_command(commands, name, help, add_arguments=None, **kwargs):
    """Adds the subcommand `name` with `--debug` and the options that
    `add_arguments(parser)` declares (`None`: its line in the list only);
    `kwargs` (`description`, `epilog`) go to `add_parser`."""
    if add_arguments is None:
        return commands.add_parser(name, help=help, add_help=False)
    parser = commands.add_parser(
        name, formatter_class=HelpFormatter, help=help, **kwargs
    )
    # Unset unless given, so `keras-mlh --debug CMD` counts too.
    parser.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP
    )
    add_arguments(parser)
    return parser


DEBUG_HELP = "show the full traceback on errors"


def add_quiet(parser):
    """`-q/--quiet`: no progress bars (`args.verbose` 0 instead of 1)."""
    parser.add_argument(
        "-q",
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        default=1,
        help="no progress bars",
    )


def add_number(parser, flag, default, help, type=positive_int, **kwargs):
    """A number option whose help ends in `(default: X)`."""
    shown = (
        f"default: {default:g}" if isinstance(default, float) else f"default: {default}"
    )
    help = f"{help} ({shown})" if help else shown
    parser.add_argument(flag, type=type, default=default, help=help, **kwargs)


def add_batch_size(parser, default=INFERENCE_BATCH_SIZE, help="inference batch size"):
    add_number(parser, "--batch-size", default, help)


def add_image_key(parser, what="the images"):
    """`--key`: the array of an `.npz` holding the images."""
    help = f"array holding {what} in an .npz (default: images, x or x_query)"
    parser.add_argument("--key", help=help)


def add_overwrite(parser, help):
    parser.add_argument("--overwrite", action="store_true", help=help)

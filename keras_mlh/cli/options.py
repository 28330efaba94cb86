"""What the `keras-mlh` commands share on their command lines.

The value types of the options (`image_size`, `bits`, ...), the help
formatter, and the option groups several commands take (`--debug`, `-q`,
`--batch-size`, `--key`, `--overwrite`), each declared once here. A command
module (`keras_mlh.cli.train`, ...) declares its own options in its
`add_arguments(parser)`, taking choices and defaults from the library
(`default_of`), so the command line cannot drift from it.

Only argparse, inspect and the numpy-only `keras_mlh_runtime.codes` are
imported, so `keras-mlh --help` stays fast.
"""

import argparse
import inspect

from keras_mlh_runtime.codes import validate_bits

PROG = "keras-mlh"
# The encoding commands' --batch-size: images per inference batch.
INFERENCE_BATCH_SIZE = 256


def default_of(function, name):
    """The default value of the parameter `name` of `function` (or class).

    Args:
        function: a function or class of the library.
        name: one of its parameters with a default.

    Returns:
        The default, so an option's default is the library's own.

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
def image_size(text):
    """`"64"` or `"64x48"` (height x width) -> (height, width).

    Example:
    >>> image_size("64"), image_size("64x48")
    ((64, 64), (64, 48))
    """
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


def count_or_fraction(text):
    """A count (`"1000"`) or a fraction in (0, 1) (`"0.2"`) of the images."""
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


def int_at_least(minimum, expected):
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


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")


def bits(text):
    """A code length: `keras_mlh_runtime.codes.validate_bits`'s rule."""
    try:
        return validate_bits(positive_int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error}; got {text!r}") from None


def positive_float(text):
    """A number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}")
    return value


def cutoff(text):
    """A ranking cut-off: a positive integer, or `all` (`None`)."""
    if text.lower() == "all":
        return None
    return positive_int(text)


# ------------------------------------------------------------ help, groups
class HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions, keeps the example epilogs as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_debug(parser, everywhere=True):
    """`--debug`: tracebacks instead of one-line errors (and TF's logs).

    Args:
        parser: the parser to add it to.
        everywhere: `True` for a command's parser, where it is left unset
            unless given, so `keras-mlh --debug CMD` and `keras-mlh CMD
            --debug` both count.
    """
    extra = {"default": argparse.SUPPRESS} if everywhere else {}
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the full traceback on errors",
        **extra,
    )


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
    """A number option whose help ends in its default.

    Args:
        parser: the parser to add it to.
        flag: e.g. `"--radius"`.
        default: its default, shown as `(default: X)` after `help`.
        help: what it is; `None` shows only `default: X`.
        type: its value type (`positive_int` by default).
        **kwargs: more `add_argument` arguments (`metavar`).
    """
    shown = (
        f"default: {default:g}" if isinstance(default, float) else f"default: {default}"
    )
    parser.add_argument(
        flag,
        type=type,
        default=default,
        help=f"{help} ({shown})" if help else shown,
        **kwargs,
    )


def add_batch_size(parser, default=INFERENCE_BATCH_SIZE, help="inference batch size"):
    """`--batch-size`, with `help` and its default."""
    add_number(parser, "--batch-size", default, help)


def add_image_key(parser, what="the images"):
    """`--key`: the array of an `.npz` holding the images to read."""
    # keras_mlh.cli.io.IMAGE_KEYS, without importing numpy's readers here.
    parser.add_argument(
        "--key",
        help=f"array holding {what} in an .npz (default: images, x or x_query)",
    )


def add_overwrite(parser, help):
    """`--overwrite`: replace what `help` says instead of refusing to."""
    parser.add_argument("--overwrite", action="store_true", help=help)


def add_command(commands, name, help, add_arguments=None, **kwargs):
    """Adds the subcommand `name` to `commands`, its options declared by
    `add_arguments(parser)` after the shared `--debug`.

    Args:
        commands: what `add_subparsers` returned.
        name: the command's name.
        help: its line in the list of commands.
        add_arguments: declares the command's options; `None` adds the
            command with its line only (a command that is not run now).
        **kwargs: passed to `add_parser` (`description`, `epilog`).

    Returns:
        The command's parser.
    """
    if add_arguments is None:
        return commands.add_parser(name, help=help, add_help=False)
    parser = commands.add_parser(
        name, formatter_class=HelpFormatter, help=help, **kwargs
    )
    add_debug(parser)
    add_arguments(parser)
    return parser

"""The `keras-mlh` argument parser and entry point: `build_parser`, `main`.

Each command module (`keras_mlh.cli.train`, `evaluate`, `encode`, `index`,
`export`) declares its options in `add_arguments(parser)` and runs in
`run(args)`; the options several commands share are declared once in
`keras_mlh.cli.options`. `main` imports only the module of the command it
runs (and with it numpy, faiss or numba; TensorFlow only once a command
needs it), so `keras-mlh --help` starts fast. Exit codes: 0 success, 2
usage error (argparse), 1 any other error, shown as one line on stderr
(`keras-mlh: error: ...`); `--debug` shows the traceback instead, 130 on
Ctrl-C, 143 on SIGTERM (which cleans up as Ctrl-C does).
"""

import argparse
import importlib
import signal
import sys
import threading

from keras_mlh.cli import options
from keras_mlh.cli.errors import one_line
from keras_mlh.cli.options import PROG

EXAMPLES = """examples:
  keras-mlh train --out runs/mnist                 # offline MNIST-5k digits
  keras-mlh evaluate runs/mnist                    # mAP, P@K, PR data, plots
  keras-mlh export runs/mnist/model.keras encoder/ # SavedModel + ONNX
  keras-mlh encode runs/mnist/model.keras images.npz codes.npz
  keras-mlh index build codes.npz db.index
  keras-mlh index search db.index queries.npz -k 10

`keras-mlh COMMAND --help` describes each command."""
# Command -> its line in `keras-mlh --help`; `keras_mlh.cli.COMMAND` declares
# and runs it.
COMMANDS = {
    "train": "train an MLH model into a run folder",
    "evaluate": "mAP, precision@K, PR data and plots of a run",
    "encode": "images -> packed binary codes",
    "index": "build and search Hamming indexes",
    "export": "export the encoder as SavedModel and/or ONNX",
}
# The library's lists that the commands offer, by their former names here.
_LISTS = {
    "MODES": "keras_mlh.cli.train",
    "BACKBONES": "keras_mlh.cli.train",
    "MAX_BITS": "keras_mlh_runtime.codes",
    "KINDS": "keras_mlh.cli.index",
}


def build_parser(commands=None):
    """The argument parser of `keras-mlh`.

    Args:
        commands: the names of the commands whose options to declare (the
            others get their line in `--help` only), so that only their
            modules are imported; `None` declares every command.

    Returns:
        An `argparse.ArgumentParser`. The parsed arguments of a command hold
        its function as `handler`.
    """
    from keras_mlh.version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mutual Learning for Hashing (MLH): train hashing models, "
        "evaluate them, encode images into binary codes, search them, export "
        "encoders.",
        epilog=EXAMPLES,
        formatter_class=options.HelpFormatter,
    )
    options.add_debug(parser, everywhere=False)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help in COMMANDS.items():
        if commands is not None and name not in commands:
            options.add_command(subparsers, name, help)
            continue
        module = importlib.import_module(f"keras_mlh.cli.{name}")
        options.add_command(
            subparsers,
            name,
            help,
            module.add_arguments,
            description=module.DESCRIPTION,
            epilog=module.EPILOG,
        )
    return parser


def _commands_of(argv):
    """The command `argv` runs, in a list: its first word (`keras-mlh`'s own
    options, `--debug`, `--version` and `--help`, take no values)."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return [word] if word in COMMANDS else []


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
    words = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(_commands_of(words)).parse_args(words)
    args.from_command_line = argv is None
    args.argv = list(sys.argv[1:] if argv is None else argv)
    debug = getattr(args, "debug", False)
    if debug:
        from keras_mlh.cli import io

        io.show_startup_logs = True  # TensorFlow's start-up lines too
    previous = _on_sigterm(_terminate)
    try:
        return args.handler(args) or 0
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


def __getattr__(name):
    if name in _LISTS:
        return getattr(importlib.import_module(_LISTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

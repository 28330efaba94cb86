"""The `keras-mlh` argument parser and entry point: `build_parser`, `main`.

`main` imports only the module of the command it runs (TensorFlow only once
a library call needs it), so `keras-mlh --help` starts fast. Exit codes: 0
success, 2 usage error (argparse), 1 any other error, shown as one line on
stderr (`keras-mlh: error: ...`; `--debug` shows the traceback and
TensorFlow's start-up lines instead), 130 on Ctrl-C, 143 on SIGTERM (which
cleans up as Ctrl-C does).
"""

import argparse
import contextlib
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
# Command -> its line in `keras-mlh --help`; `keras_mlh.cli.COMMAND` runs it.
COMMANDS = {
    "train": "train an MLH model into a run folder",
    "evaluate": "mAP, precision@K, PR data and plots of a run",
    "encode": "images -> packed binary codes",
    "index": "build and search Hamming indexes",
    "export": "export the encoder as SavedModel and/or ONNX",
}


def build_parser(commands=None):
    """The parser of `keras-mlh`, declaring the options of `commands` (all
    for `None`; the others get their line in `--help` only, their modules are
    not imported). A command's parsed arguments hold its function as
    `handler`."""
    from keras_mlh.version import __version__

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mutual Learning for Hashing (MLH): train hashing models, "
        "evaluate them, encode images into binary codes, search them, export "
        "encoders.",
        epilog=EXAMPLES,
        formatter_class=options.HelpFormatter,
    )
    parser.add_argument("--debug", action="store_true", help=options.DEBUG_HELP)
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, help in COMMANDS.items():
        if commands is not None and name not in commands:
            options.add_command(subparsers, name, help)
            continue
        module = importlib.import_module(f"keras_mlh.cli.{name}")
        text = {"description": module.DESCRIPTION, "epilog": module.EPILOG}
        options.add_command(subparsers, name, help, module.add_arguments, **text)
    return parser


def main(argv=None):
    """Runs `keras-mlh` with `argv` (`None`: `sys.argv`, recorded in a run's
    `run.json`); returns the exit code (usage errors and `--help` exit
    through `SystemExit`, as argparse does)."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Only the command that runs (the first word; `keras-mlh`'s own options
    # take no values) is imported.
    word = next((arg for arg in words if not arg.startswith("-")), None)
    args = build_parser([word] if word in COMMANDS else []).parse_args(words)
    args.from_command_line = argv is None
    args.argv = words
    debug = getattr(args, "debug", False)
    previous = _on_sigterm(_terminate)
    try:
        from keras_mlh.cli.io import startup_lines_hidden

        with contextlib.nullcontext() if debug else startup_lines_hidden():
            return args.handler(args) or 0
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        sys.stdout.flush()
        reason = interrupt.args[0] if interrupt.args else "interrupted"
        print(f"{PROG}: {reason}", file=sys.stderr)
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

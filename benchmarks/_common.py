"""Shared bits of the benchmark scripts: machine description, result files."""

import argparse
import ast
import json
import os
import platform
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def machine():
    import numpy as np

    parts = [
        f"{os.cpu_count()} cores",
        platform.machine(),
        f"Python {sys.version.split()[0]}",
        f"numpy {np.__version__}",
    ]
    for module in ("faiss", "numba", "onnxruntime", "tensorflow", "keras"):
        loaded = sys.modules.get(module)
        if loaded is not None:
            parts.append(f"{module} {getattr(loaded, '__version__', '?')}")
    return ", ".join(parts)


def write(name, markdown, data, folder=RESULTS):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, f"{name}.md"), "w") as f:
        f.write(markdown)
    with open(os.path.join(folder, f"{name}.json"), "w") as f:
        json.dump(data, f, indent=2)
    print(markdown)


def seconds(function):
    """Wall-clock seconds of one call of `function`."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def override(text):
    """`--set NAME=VALUE` of the benchmarks: an `MLH` argument and its value."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise argparse.ArgumentTypeError(f"expected name=value, got {text!r}")
    try:
        return name, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return name, value  # a bare string such as sample


def add_override_option(parser, example):
    """Declares `--set NAME=VALUE` (repeatable) on `parser`, into `overrides`.

    Args:
        parser: the benchmark's `argparse.ArgumentParser`.
        example: an override shown in the help, e.g. `"mutual_weight=0.5"`.
    """
    parser.add_argument(
        "--set",
        dest="overrides",
        type=override,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"override an MLH argument (repeatable), e.g. {example}",
    )

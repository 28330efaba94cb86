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


def mode_bars(axes, cells, modes, bits_list):
    """Grouped bars of mAP on `axes`: a group per bit length, a bar per mode.

    Args:
        axes: a matplotlib `Axes`.
        cells: `{(mode, bits): (mean, std)}`; a missing cell draws no bar.
        modes: the modes, in bar order.
        bits_list: the bit lengths, in group order.

    Returns:
        The lowest `mean - std` drawn (for the y-axis), or `None` if none.
    """
    import numpy as np

    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        means, stds = zip(
            *(cells.get((mode, b), (np.nan, 0.0)) for b in bits_list), strict=True
        )
        x = np.arange(len(bits_list)) + i * width
        axes.bar(x, means, width, yerr=stds, label=mode, capsize=2)
    axes.set_xticks(np.arange(len(bits_list)) + 0.4 - width / 2)
    axes.set_xticklabels([f"{b} bits" for b in bits_list])
    lows = [m - s for m, s in cells.values() if np.isfinite(m)]
    return min(lows) if lows else None


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


def add_result_options(parser, names, report_only):
    """Declares `--out`, `--name` and `--report-only` on `parser`.

    Args:
        parser: the benchmark's `argparse.ArgumentParser`.
        names: the default result file names, for the help of `--name` (its
            default is `None`: the benchmark picks one from the other options).
        report_only: the keyword arguments of `--report-only`, e.g.
            `{"action": "store_true", "help": ...}` for a flag.
    """
    parser.add_argument("--out", default=RESULTS, help="folder for the results")
    parser.add_argument(
        "--name", default=None, help=f"result file name (default: {names})"
    )
    parser.add_argument("--report-only", **report_only)

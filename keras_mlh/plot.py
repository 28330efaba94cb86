"""PNG plots of retrieval quality and training: each function draws on its own
`Figure` (never pyplot's global state), writes `path` and returns it.

Example:
>>> plot_pr_curve({"mlh": curve, "center": other}, "pr.png")  # doctest: +SKIP
"""

import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

__all__ = ["plot_bit_balance", "plot_history", "plot_pr_curve", "plot_precision_at_k"]
FIGSIZE, DPI = (6.4, 4.8), 100


def _axes(figure, xlabel, ylabel, title="", ylim=(0, 1.02), position=(1, 1, 1)):
    axes = figure.add_subplot(*position)
    axes.set(xlabel=xlabel, ylabel=ylabel, title=title)
    if ylim is not None:  # set_ylim(None) would stop autoscaling
        axes.set_ylim(*ylim)
    axes.grid(alpha=0.3)
    return axes


def _save(figure, path):
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path


def _lines(values, name, points, path, xlabel, title, marker, xlim=None):
    """One precision line per result (`values`: one, or a dict label -> result)."""
    if not isinstance(values, dict):
        raise ValueError(f"`{name}` must be a dict, or a dict of name -> dict.")
    nested = values and all(isinstance(v, dict) for v in values.values())
    series = values if nested else {"": values}
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = _axes(figure, xlabel, "precision", title)
    for label, result in series.items():
        axes.plot(*points(result), label=label or None, marker=marker)
    if any(series):
        axes.legend()
    if xlim:
        axes.set_xlim(*xlim)
    return _save(figure, path)


def plot_pr_curve(curves, path, title="Precision-recall over Hamming radius"):
    """Precision against recall, one line per curve.

    Args:
        curves: a `precision_recall_curve` result, or a dict of name -> result.
    """

    def points(curve):
        precision = np.asarray(curve["precision"], dtype=float)
        keep = np.isfinite(precision)
        return np.asarray(curve["recall"], dtype=float)[keep], precision[keep]

    return _lines(curves, "curves", points, path, "recall", title, ".", (0, 1.02))


def plot_precision_at_k(values, path, title="Precision@K"):
    """Precision@K against K.

    Args:
        values: `{k: precision}` (`precision_at_k` of a list), or name -> such.
    """

    def points(result):
        if not result:
            raise ValueError("`values` must hold at least one (k, precision) point.")
        ks = sorted(result)
        return ks, [result[k] for k in ks]

    return _lines(values, "values", points, path, "K (items retrieved)", title, "o")


def plot_history(history, path, title="Training"):
    """Loss terms and mAP / bit balance per epoch of a `History` or its dict."""
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError("`history` must be a History or a non-empty dict of lists.")
    figure = Figure(figsize=(11, 4.2), dpi=DPI)
    losses = _axes(figure, "epoch", "loss", ylim=None, position=(1, 2, 1))
    losses.set_yscale("log")
    quality = _axes(figure, "epoch", "mAP / balance", ylim=None, position=(1, 2, 2))
    for key, values in sorted(logs.items()):
        epochs = np.arange(1, len(values) + 1)
        if key.endswith("loss"):
            style = "--" if key.startswith("val_") else "-"
            losses.plot(epochs, values, label=key, linestyle=style)
        elif key.endswith(("map", "bit_balance")):
            quality.plot(epochs, values, label=key, marker=".")
    for axes in (losses, quality):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.lines:
            axes.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_bit_balance(codes, path, title="Bit balance"):
    """Fraction of +1 per bit of ±1 or packed codes; 0.5 is a balanced bit."""
    from keras_mlh.evaluation import bit_balance

    fraction = bit_balance(codes)
    title = f"{title} (mean |p - 0.5| = {np.abs(fraction - 0.5).mean():.3f})"
    figure = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = _axes(figure, "bit", "fraction of +1", title, (0, 1))
    axes.grid(False)
    axes.bar(np.arange(len(fraction)), fraction, color="tab:blue")
    axes.axhline(0.5, color="black", linewidth=1, linestyle="--")
    return _save(figure, path)

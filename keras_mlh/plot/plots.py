"""PNG plots of retrieval quality and training, with matplotlib's Agg backend.

Each function draws on its own `Figure` (never pyplot's global state), writes
a PNG of `figsize * dpi` pixels and returns the path.
"""

import os

import numpy as np

FIGSIZE = (6.4, 4.8)
DPI = 100


def _figure(figsize=FIGSIZE):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, dpi=DPI)


def _save(figure, path):
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    figure.savefig(path, dpi=DPI, format="png")
    return path


def _curves(curves, what):
    if isinstance(curves, dict) and all(isinstance(v, dict) for v in curves.values()):
        return curves
    if isinstance(curves, dict):
        return {"": curves}
    raise ValueError(
        f"`curves` must be a {what} dict or a dict of name -> {what} dict."
    )


def plot_pr_curve(curves, path, title="Precision-recall over Hamming radius"):
    """Precision against recall, one line per curve.

    Args:
        curves: a `precision_recall_curve` result, or a dict of name ->
            result (e.g. one per mode).
        path: PNG file to write.
        title: plot title.

    Returns:
        The path written.
    """
    figure = _figure()
    axes = figure.add_subplot(1, 1, 1)
    for name, curve in _curves(curves, "precision_recall_curve").items():
        precision = np.asarray(curve["precision"], dtype=float)
        recall = np.asarray(curve["recall"], dtype=float)
        keep = np.isfinite(precision)
        axes.plot(recall[keep], precision[keep], marker=".", label=name or None)
    axes.set_xlabel("recall")
    axes.set_ylabel("precision")
    axes.set_xlim(0, 1.02)
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if any(_curves(curves, "precision_recall_curve")):
        axes.legend()
    return _save(figure, path)


def plot_precision_at_k(values, path, title="Precision@K"):
    """Precision@K against K.

    Args:
        values: a dict `{k: precision}` (from `precision_at_k` with a list),
            or a dict of name -> such dict.
        path: PNG file to write.
        title: plot title.

    Returns:
        The path written.
    """
    if values and all(isinstance(v, dict) for v in values.values()):
        series = values
    else:
        series = {"": values}
    figure = _figure()
    axes = figure.add_subplot(1, 1, 1)
    for name, points in series.items():
        ks = sorted(points)
        if not ks:
            raise ValueError("`values` must hold at least one (k, precision) point.")
        axes.plot(ks, [points[k] for k in ks], marker="o", label=name or None)
    axes.set_xlabel("K (items retrieved)")
    axes.set_ylabel("precision")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if any(series):
        axes.legend()
    return _save(figure, path)


def plot_history(history, path, title="Training"):
    """Loss terms (left) and validation mAP / bit balance (right) per epoch.

    Args:
        history: a `keras.callbacks.History` or its `.history` dict.
        path: PNG file to write.
        title: figure title.

    Returns:
        The path written.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(
            "`history` must be a keras History or a non-empty dict of lists."
        )
    figure = _figure((11, 4.2))
    losses = figure.add_subplot(1, 2, 1)
    quality = figure.add_subplot(1, 2, 2)
    for key, values in sorted(logs.items()):
        epochs = np.arange(1, len(values) + 1)
        if key.endswith("loss"):
            losses.plot(
                epochs,
                values,
                label=key,
                linestyle="--" if key.startswith("val_") else "-",
            )
        elif key.endswith("map") or key.endswith("bit_balance"):
            quality.plot(epochs, values, label=key, marker=".")
    losses.set_xlabel("epoch")
    losses.set_ylabel("loss")
    losses.set_yscale("log")
    quality.set_xlabel("epoch")
    quality.set_ylabel("mAP / balance")
    from matplotlib.ticker import MaxNLocator

    for axes in (losses, quality):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=7)
    figure.suptitle(title)
    figure.tight_layout()
    return _save(figure, path)


def plot_bit_balance(codes, path, title="Bit balance"):
    """Fraction of +1 per bit; 0.5 is a perfectly balanced bit.

    Args:
        codes: ±1 codes `(n, bits)` or packed uint8.
        path: PNG file to write.
        title: plot title.

    Returns:
        The path written.
    """
    from keras_mlh.evaluation import bit_balance

    fraction = bit_balance(codes)
    figure = _figure()
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(np.arange(len(fraction)), fraction, color="tab:blue")
    axes.axhline(0.5, color="black", linewidth=1, linestyle="--")
    axes.set_ylim(0, 1)
    axes.set_xlabel("bit")
    axes.set_ylabel("fraction of +1")
    axes.set_title(f"{title} (mean |p - 0.5| = {np.abs(fraction - 0.5).mean():.3f})")
    return _save(figure, path)

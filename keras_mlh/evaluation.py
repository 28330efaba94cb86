"""One call for a full retrieval evaluation: numbers as JSON, plots as PNG.

`keras-mlh evaluate`, the examples and users' own scripts share this, so a
report means the same everywhere. numpy, faiss-free and TensorFlow-free.
"""

import os

import numpy as np

from keras_mlh.files import write_json
from keras_mlh.metrics import (
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
)

DEFAULT_CUTOFFS = (1, 10, 50, 100, 500, 1000)
REPORT_FILE = "report.json"


def _json_number(value):
    value = float(value)
    return value if np.isfinite(value) else None


def retrieval_report(
    query_codes,
    query_labels,
    database_codes,
    database_labels,
    k=None,
    cutoffs=DEFAULT_CUTOFFS,
    out_dir=None,
    history=None,
):
    """mAP@K, P@K, R@K, the PR curve and precision within radius 2.

    Args:
        query_codes, database_codes: ±1 codes `(n, bits)` or packed uint8.
        query_labels, database_labels: class ids `(n,)` or multi-hot rows.
        k: mAP cut-off; `None` ranks the whole database (mAP@all).
        cutoffs: the K of precision@K and recall@K; those larger than the
            database are dropped.
        out_dir: when given, writes `report.json` and the PNG plots
            (`pr_curve.png`, `precision_at_k.png`, `bit_balance.png` and,
            with `history`, `history.png`) into this folder.
        history: optional `keras.callbacks.History` or its dict, plotted.

    Returns:
        A JSON-serializable dict: `map`, `map_k` (the cut-off, `None` for
        all), `precision_at_k`, `recall_at_k` (`{k: value}` with string
        keys), `precision_within_radius_2`, `pr_curve` (radius, precision,
        recall lists; `None` where no query retrieves anything), counts and,
        with `out_dir`, `files` (name -> path).

    Example:
    >>> report = retrieval_report(q_codes, q_labels, db_codes, db_labels,
    ...                           out_dir="runs/eval")
    >>> report["map"], report["files"]["pr_curve"]
    """
    n = len(database_codes)
    ks = sorted({int(c) for c in cutoffs if int(c) <= n}) or [n]
    args = (query_codes, query_labels, database_codes, database_labels)
    curve = precision_recall_curve(*args)
    report = {
        "map": mean_average_precision(*args, k=k),
        "map_k": None if k is None else int(k),
        "num_queries": int(len(query_codes)),
        "num_database": int(n),
        "precision_at_k": {str(c): v for c, v in precision_at_k(*args, ks).items()},
        "recall_at_k": {str(c): v for c, v in recall_at_k(*args, ks).items()},
        "precision_within_radius_2": precision_within_radius(*args, radius=2),
        "pr_curve": {
            key: [_json_number(v) for v in curve[key]]
            for key in ("radius", "precision", "recall")
        },
    }
    if out_dir is not None:
        report["files"] = _write_report(report, curve, query_codes, out_dir, history)
    return report


def _write_report(report, curve, codes, out_dir, history):
    from keras_mlh.plot import (
        plot_bit_balance,
        plot_history,
        plot_pr_curve,
        plot_precision_at_k,
    )

    os.makedirs(out_dir, exist_ok=True)
    at_k = {int(c): v for c, v in report["precision_at_k"].items()}
    files = {
        "pr_curve": plot_pr_curve(curve, os.path.join(out_dir, "pr_curve.png")),
        "precision_at_k": plot_precision_at_k(
            at_k, os.path.join(out_dir, "precision_at_k.png")
        ),
        "bit_balance": plot_bit_balance(
            codes, os.path.join(out_dir, "bit_balance.png")
        ),
    }
    if history:
        files["history"] = plot_history(history, os.path.join(out_dir, "history.png"))
    files["report"] = os.path.join(out_dir, REPORT_FILE)
    write_json({**report, "files": files}, files["report"])
    return files

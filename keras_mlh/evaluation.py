"""A full retrieval evaluation in one call, numbers as JSON and plots as PNG, of
codes (`retrieval_report`) or of a run folder (`evaluate_run`, `keras-mlh evaluate`)."""

import contextlib
import json
import os

import numpy as np

from keras_mlh import encoding, metrics, runs
from keras_mlh.datasets.hashing_data import unseen_mask
from keras_mlh.files import atomic_path, check_model_file, check_output, write_json
from keras_mlh.metrics import mean_average_precision, precision_at_k, recall_at_k
from keras_mlh_runtime.code_files import load_npz
from keras_mlh_runtime.codes import BIT_ORDER, to_packed

DEFAULT_CUTOFFS = (1, 10, 50, 100, 500, 1000)
REPORT_FILE = "report.json"
EVAL_FOLDER = "eval"
PLOTS = ("pr_curve", "precision_at_k", "bit_balance", "history")  # each a NAME.png


def bit_balance(codes, name="codes"):
    """The share of +1 of every bit, float64 `(bits,)`; 0.5 is perfectly balanced.

    Args:
        codes: packed uint8, ±1 or 0/1 codes `(n, bits)`.

    Example:
    >>> bit_balance([[1, -1, 1, 1, 1, 1, 1, 1], [1, 1, -1, 1, 1, 1, 1, 1]])[:3]
    array([1. , 0.5, 0.5])
    """
    packed = to_packed(codes, name=name)
    return np.unpackbits(packed, axis=-1, bitorder=BIT_ORDER).mean(0)


def retrieval_report(
    query_codes,
    query_labels,
    database_codes,
    database_labels,
    k=None,
    cutoffs=DEFAULT_CUTOFFS,
    out_dir=None,
    history=None,
    radius=2,
    tie_breaking="stable",
    metadata=None,
):
    """mAP@K, P@K, R@K, the PR curve, precision within a radius, bit balance.

    Args:
        k, tie_breaking, codes and labels: as in `mean_average_precision`.
        cutoffs: the K of precision@K and recall@K (beyond the database: dropped).
        out_dir: writes `report.json` and the PNG plots there, all or none.
        history: a `keras.callbacks.History` or its dict to plot.
        radius: Hamming radius of the precision within radius (inclusive).
        metadata: extra JSON-safe entries, none named as a report entry.

    Returns:
        A JSON-safe dict of the numbers (`None` where undefined), `metadata`
        and, with `out_dir`, `plots` and `files`.

    Example:
    >>> codes, labels = np.where(np.eye(4, 16) > 0, 1, -1), np.arange(4)
    >>> report = retrieval_report(codes, labels, codes, labels, out_dir="eval")
    >>> report["map"], os.path.relpath(report["files"]["pr_curve"])
    (1.0, 'eval/pr_curve.png')
    """
    args = (query_codes, query_labels, database_codes, database_labels)
    curve = metrics.precision_recall_curve(*args)
    n = len(database_codes)
    ks = sorted({int(c) for c in cutoffs if int(c) <= n}) or [n]
    balance = bit_balance(database_codes, name="database_codes")
    within = metrics.precision_within_radius(*args, radius=radius)
    report = {
        "map": mean_average_precision(*args, k=k, tie_breaking=tie_breaking),
        "map_k": "all" if k is None else int(k),
        "tie_breaking": tie_breaking,
        "num_queries": int(len(query_codes)),
        "num_database": int(n),
        "bits": int(len(balance)),
        "precision_at_k": {str(c): v for c, v in precision_at_k(*args, ks).items()},
        "recall_at_k": {str(c): v for c, v in recall_at_k(*args, ks).items()},
        "precision_within_radius": {"radius": int(radius), "value": within},
        "pr_curve": {  # NaN (no query retrieves anything) -> None
            key: [v.item() if np.isfinite(v) else None for v in curve[key]]
            for key in ("radius", "precision", "recall")
        },
        "bit_balance_mean_abs_deviation": float(np.abs(balance - 0.5).mean()),
    }
    if clashes := sorted(set(metadata or {}) & {*report, "plots", "files"}):
        raise ValueError(f"`metadata` must not replace the report's {clashes}.")
    report.update(metadata or {})
    if out_dir is not None:
        _write_report(report, curve, database_codes, out_dir, history)
    return report


def _write_report(report, curve, database_codes, out_dir, history):
    """Adds `plots` and `files` to `report` and writes everything, or nothing."""
    from keras_mlh import plot

    plots = [name for name in PLOTS if history or name != "history"]
    report["plots"] = [f"{name}.png" for name in plots]
    names = {**{k: f"{k}.png" for k in plots}, "report": REPORT_FILE}
    report["files"] = {k: os.path.join(out_dir, name) for k, name in names.items()}
    with contextlib.ExitStack() as stack:
        # Each file is renamed into place once all are written, in the reverse
        # order: the report, entered first, last (its presence means done).
        temp = {}
        for key in ("report", *plots):
            path = report["files"][key]
            temp[key] = stack.enter_context(atomic_path(path, make_folders=True))
        plot.plot_pr_curve(curve, temp["pr_curve"])
        at_k = {int(c): v for c, v in report["precision_at_k"].items()}
        plot.plot_precision_at_k(at_k, temp["precision_at_k"])
        plot.plot_bit_balance(database_codes, temp["bit_balance"])
        if history:
            plot.plot_history(history, temp["history"])
        write_json(report, temp["report"])


def evaluate_run(
    run=None,
    model=None,
    data=None,
    out=None,
    overwrite=False,
    k=None,
    cutoffs=DEFAULT_CUTOFFS,
    radius=2,
    tie_breaking="stable",
    batch_size=encoding.INFERENCE_BATCH_SIZE,
    verbose=1,
):
    """Encodes a run's queries and database and writes their report (checked first).

    Args:
        run: a run folder of `keras-mlh train`, or `None` with `model` and `data`.
        model: the `.keras` file; default `RUN/model.keras`.
        data: the split `.npz` (queries and database); default `RUN/split.npz`.
        out: the report's folder; default `RUN/eval` (`./eval` without a run).
        k, cutoffs, radius, tie_breaking: as in `retrieval_report`.

    Returns:
        `retrieval_report`'s dict, with `model`, `data` and, for a split with
        `unseen_classes`, `seen_unseen` (`seen_unseen_map`).

    Example:
    >>> evaluate_run("runs/mnist")["map"]  # doctest: +SKIP
    0.9512
    """
    if run is None and (model is None or data is None):
        raise ValueError("Give a run folder, or both `model` and `data`.")
    if run is not None and not os.path.isdir(run):
        raise ValueError(
            f"Run folder not found: {run!r}. Give the --out folder of "
            "`keras-mlh train`, or a model and its data (--model, --data)."
        )
    model = os.fspath(model or os.path.join(run, runs.MODEL_FILE))
    data = os.fspath(data or os.path.join(run, runs.SPLIT_FILE))
    out = os.path.abspath(out or os.path.join(run or os.curdir, EVAL_FOLDER))
    history = os.path.join(run, runs.HISTORY_FILE) if run else None
    check_model_file(model, fix=encoding.MODEL_FIX)
    plots = [os.path.join(out, f"{name}.png") for name in PLOTS]
    report = os.path.join(out, REPORT_FILE)
    check_output(report, [model, data, history], overwrite, companions=plots)
    split, history = load_split(data), load_history(history)
    from keras_mlh.models import load_model

    mlh = load_model(model)
    codes = []
    for side, what in (("query", "queries"), ("database", "database images")):
        images = encoding.split_images(split, f"x_{side}", mlh.image_shape, data)
        codes.append(encoding.encode_images(mlh, images, batch_size, verbose, what))
    args = (codes[0], split["y_query"], codes[1], split["y_database"])
    metadata = {"model": os.path.abspath(model), "data": os.path.abspath(data)}
    if "unseen_classes" in split:
        unseen = [int(c) for c in split["unseen_classes"]]
        metadata["seen_unseen"] = seen_unseen_map(*args, unseen, k, tie_breaking)
    return retrieval_report(
        *args, k, cutoffs, out, history, radius, tie_breaking, metadata
    )


def load_split(path):
    """The arrays of a split file, checked for the four evaluation arrays."""
    arrays = load_npz(path, "Evaluation data")
    sides = ("query", "database")
    file_split = encoding.FILE_SPLIT_KEY in arrays
    names = [f"{s}_paths" if file_split else f"x_{s}" for s in sides]
    keys = (names[0], "y_query", names[1], "y_database")
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise ValueError(
            f"{path!r} lacks {', '.join(missing)}: evaluation needs "
            f"{', '.join(keys)}, as in the split.npz of a run folder."
        )
    for side, name in zip(sides, names, strict=True):
        images, labels = arrays[name], arrays[f"y_{side}"]
        if labels.ndim == 0 or images.ndim == 0 or len(labels) != len(images):
            raise ValueError(
                f"{path!r}: y_{side} has {labels.shape[0] if labels.ndim else 0} "
                f"labels but {name} {images.shape[0] if images.ndim else 0} "
                "images; give one label (or multi-hot row) per image."
            )
    return arrays


def load_history(path):
    """The per-epoch logs of a run's `history.json` at `path`, or `None`."""
    if path is None or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            history = json.load(f)
        if not isinstance(history, dict) or not all(
            isinstance(v, list) for v in history.values()
        ):
            raise ValueError("not a JSON object of per-epoch lists, as train writes")
    except (OSError, ValueError) as error:
        raise ValueError(
            f"Cannot read the training history {path!r}: {error}"
        ) from None
    return history


def seen_unseen_map(
    query_codes,
    query_labels,
    database_codes,
    database_labels,
    unseen_classes,
    k=None,
    tie_breaking="stable",
):
    """mAP@K of the seen/unseen protocol: each query group against each database;
    an item is unseen when any of its labels is in `unseen_classes`.

    Returns:
        A dict: `"seen@seen"`, `"seen@all"`, `"unseen@unseen"`, `"unseen@all"`
        (`None` where a group is empty), `"unseen_classes"` and the group sizes.

    Example:
    >>> codes, labels = np.where(np.eye(4, 16) > 0, 1, -1), np.arange(4)
    >>> seen_unseen_map(codes, labels, codes, labels, [3])
    {'seen@seen': 1.0, 'seen@all': 1.0, 'unseen@unseen': 1.0, ...}
    """
    queries = np.asarray(query_codes), np.asarray(query_labels)
    database = np.asarray(database_codes), np.asarray(database_labels)
    q_unseen = unseen_mask(queries[1], unseen_classes)
    db_unseen = unseen_mask(database[1], unseen_classes)
    groups = {"seen": ~q_unseen, "unseen": q_unseen}
    databases = {"seen": ~db_unseen, "unseen": db_unseen}
    result = {}
    for group, q in groups.items():
        for against, d in ((group, databases[group]), ("all", db_unseen | True)):
            result[f"{group}@{against}"] = None
            if q.any() and d.any():
                result[f"{group}@{against}"] = mean_average_precision(
                    *(a[q] for a in queries), *(a[d] for a in database), k, tie_breaking
                )
    result["unseen_classes"] = sorted(int(c) for c in unseen_classes)
    result["num_queries"] = {g: int(m.sum()) for g, m in groups.items()}
    result["num_database"] = {g: int(m.sum()) for g, m in databases.items()}
    return result

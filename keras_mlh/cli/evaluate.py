"""`keras-mlh evaluate`: retrieval quality of a trained model, with plots.

Encodes the queries and the database of a run's `split.npz` (or of any
`.npz` with `x_query`, `y_query`, `x_database`, `y_database`; a file-backed
split names its images by path and they are read again) and writes the
`keras_mlh.evaluation.retrieval_report` of them: `report.json` and the PNG
plots, into `RUN/eval` by default, all of them or none.
"""

import os

from keras_mlh import files
from keras_mlh.cli import options
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import load_model, require_model
from keras_mlh.cli.options import PROG, default_of
from keras_mlh.encoding import (
    FILE_SPLIT_KEY,
    array_images,
    encode_images,
    split_file_images,
)
from keras_mlh.evaluation import (
    PLOT_FILES,
    REPORT_FILE,
    retrieval_report,
    seen_unseen_map,
)
from keras_mlh.metrics import TIE_BREAKING
from keras_mlh.runs import (
    MODEL_FILE,
    SPLIT_FILE,
    SPLIT_KEYS,
    history_file,
    load_history,
    load_split,
)

EVAL_FOLDER = "eval"  # in the run folder by default

DESCRIPTION = (
    "Encodes the queries and the database of a run and writes report.json "
    "(mAP@K, precision/recall@K, precision within a Hamming radius, the "
    "precision-recall curve over radii) and PNG plots (PR curve, P@K, bit "
    "balance, training history)."
)
EPILOG = """examples:
  keras-mlh evaluate runs/mnist
  keras-mlh evaluate runs/mnist --k 1000 --out eval-1000
  keras-mlh evaluate --model m.keras --data split.npz --out eval"""


def add_arguments(parser):
    """Declares the options of `keras-mlh evaluate` on `parser`.

    Args:
        parser: the `evaluate` command's `argparse.ArgumentParser`.
    """
    options.add_quiet(parser)
    options.add_batch_size(parser)
    parser.add_argument(
        "run", nargs="?", metavar="RUN", help=f"run folder from `{PROG} train`"
    )
    parser.add_argument(
        "--model", metavar="FILE", help=f"model file (default: RUN/{MODEL_FILE})"
    )
    parser.add_argument(
        "--data",
        metavar="FILE",
        help=f"an .npz with {', '.join(SPLIT_KEYS)} (default: RUN/{SPLIT_FILE})",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help=f"output folder (default: RUN/{EVAL_FOLDER}, or ./{EVAL_FOLDER} "
        "without RUN)",
    )
    options.add_overwrite(
        parser, "replace the report and plots of an earlier evaluation in --out"
    )
    parser.add_argument(
        "--k",
        type=options.cutoff,
        default=default_of(retrieval_report, "k"),
        help="mAP cut-off: a number or all (default: all)",
    )
    cutoffs = list(default_of(retrieval_report, "cutoffs"))
    parser.add_argument(
        "--precision-at",
        type=options.positive_int,
        nargs="+",
        default=cutoffs,
        metavar="K",
        help="cut-offs of precision@K and recall@K (default: "
        f"{' '.join(map(str, cutoffs))})",
    )
    options.add_number(
        parser,
        "--radius",
        default_of(retrieval_report, "radius"),
        "Hamming radius of the precision-within-radius",
        type=options.non_negative_int,
    )
    tie_breaking = default_of(retrieval_report, "tie_breaking")
    parser.add_argument(
        "--tie-breaking",
        choices=TIE_BREAKING,
        default=tie_breaking,
        help=f"order of items at equal distance (default: {tie_breaking})",
    )
    parser.set_defaults(handler=run, parser=parser)


def run(args):
    """Encodes a run's queries and database and writes their report.

    Args:
        args: the parsed `evaluate` options: `run` or `model` and `data`,
            `out`, the metric options (`k`, `precision_at`, `radius`,
            `tie_breaking`) and the encoding ones.

    Returns:
        0, after printing mAP and precision@K and the files written.
    """
    run_folder = args.run
    if run_folder is None and (args.model is None or args.data is None):
        args.parser.error("give a RUN folder, or both --model and --data")
    if run_folder is not None and not os.path.isdir(run_folder):
        raise CLIError(
            f"Run folder not found: {run_folder!r}. Give the --out folder of "
            f"`{PROG} train`, or --model and --data."
        )
    model_path = args.model or os.path.join(run_folder, MODEL_FILE)
    data_path = args.data or os.path.join(run_folder, SPLIT_FILE)
    out = os.path.abspath(
        args.out or os.path.join(run_folder or os.curdir, EVAL_FOLDER)
    )
    require_model(model_path)
    files.check_output(  # before the slow part
        os.path.join(out, REPORT_FILE),
        inputs=[model_path, data_path, history_file(run_folder)],
        overwrite=args.overwrite,
        companions=[os.path.join(out, name) for name in PLOT_FILES.values()],
    )
    split = load_split(data_path)
    history = load_history(run_folder)  # a damaged file fails before the slow part

    model = load_model(model_path)
    codes = {}
    for key, what in (("x_query", "queries"), ("x_database", "database images")):
        if FILE_SPLIT_KEY in split:  # paths: the files are read again
            images = split_file_images(split, key, model.image_shape, data_path)
        else:
            images = array_images(split[key], model.image_shape, key, data_path)
        codes[key] = encode_images(model, images, args.batch_size, args.verbose, what)
    extra = {}
    if "unseen_classes" in split:
        extra["seen_unseen"] = seen_unseen_map(
            codes["x_query"],
            split["y_query"],
            codes["x_database"],
            split["y_database"],
            [int(c) for c in split["unseen_classes"]],
            k=args.k,
            tie_breaking=args.tie_breaking,
        )
    report = retrieval_report(
        codes["x_query"],
        split["y_query"],
        codes["x_database"],
        split["y_database"],
        k=args.k,
        cutoffs=args.precision_at,
        radius=args.radius,
        tie_breaking=args.tie_breaking,
        out_dir=out,
        history=history,
        metadata={
            "model": os.path.abspath(model_path),
            "data": os.path.abspath(data_path),
            **extra,
        },
    )
    print(
        f"mAP@{report['map_k']} = {report['map']:.4f} ({report['num_queries']} "
        f"queries, {report['num_database']} database items)"
    )
    print(
        "Precision@K: "
        + ", ".join(f"P@{k} = {v:.4f}" for k, v in report["precision_at_k"].items())
    )
    if extra:
        print(
            "Seen/unseen mAP: "
            + ", ".join(
                f"{key} = {'n/a' if value is None else f'{value:.4f}'}"
                for key, value in extra["seen_unseen"].items()
                if "@" in key
            )
        )
    print(f"Wrote {report['files']['report']}")
    for name in report["plots"]:
        print(f"  {os.path.join(out, name)}")
    return 0

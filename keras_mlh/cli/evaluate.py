"""`keras-mlh evaluate`: `keras_mlh.evaluation.evaluate_run`, printed."""

import os

from keras_mlh.cli import options
from keras_mlh.cli.options import default_of
from keras_mlh.evaluation import EVAL_FOLDER, evaluate_run
from keras_mlh.metrics import TIE_BREAKING

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
    arg, default = parser.add_argument, lambda name: default_of(evaluate_run, name)
    options.add_quiet(parser)
    options.add_batch_size(parser)
    arg("run", nargs="?", metavar="RUN", help="run folder from `keras-mlh train`")
    arg("--model", metavar="FILE", help="model file (default: RUN/model.keras)")
    help = (
        "an .npz with x_query, y_query, x_database, y_database (default: RUN/split.npz)"
    )
    arg("--data", metavar="FILE", help=help)
    help = f"output folder (default: RUN/{EVAL_FOLDER}, or ./{EVAL_FOLDER} without RUN)"
    arg("--out", metavar="DIR", help=help)
    options.add_overwrite(parser, "replace the report and plots of an earlier one")
    help = "mAP cut-off: a number or all (default: all)"
    arg("--k", type=options.cutoff, default=default("k"), help=help)
    cutoffs = list(default("cutoffs"))
    help = (
        f"cut-offs of precision@K and recall@K (default: {' '.join(map(str, cutoffs))})"
    )
    type = options.positive_int
    arg("--precision-at", type=type, nargs="+", default=cutoffs, metavar="K", help=help)
    help, type = "Hamming radius of the precision within it", options.non_negative_int
    options.add_number(parser, "--radius", default("radius"), help, type=type)
    help = "order of items at equal distance (default: %(default)s)"
    ties = default("tie_breaking")
    arg("--tie-breaking", choices=TIE_BREAKING, default=ties, help=help)
    parser.set_defaults(handler=run, parser=parser)


def run(args):
    """Evaluates the run; prints mAP, precision@K and the files written."""
    if args.run is None and (args.model is None or args.data is None):
        args.parser.error("give a RUN folder, or both --model and --data")
    report = evaluate_run(
        args.run,
        model=args.model,
        data=args.data,
        out=args.out,
        overwrite=args.overwrite,
        k=args.k,
        cutoffs=args.precision_at,
        radius=args.radius,
        tie_breaking=args.tie_breaking,
        batch_size=args.batch_size,
        verbose=args.verbose,
    )
    print(
        f"mAP@{report['map_k']} = {report['map']:.4f} ({report['num_queries']} "
        f"queries, {report['num_database']} database items)"
    )
    at_k = report["precision_at_k"].items()
    print("Precision@K: " + ", ".join(f"P@{k} = {v:.4f}" for k, v in at_k))
    if "seen_unseen" in report:
        groups = [(k, v) for k, v in report["seen_unseen"].items() if "@" in k]
        shown = [f"{k} = {'n/a' if v is None else f'{v:.4f}'}" for k, v in groups]
        print("Seen/unseen mAP: " + ", ".join(shown))
    print(f"Wrote {report['files']['report']}")
    for name in report["plots"]:
        print(f"  {os.path.join(os.path.dirname(report['files']['report']), name)}")
    return 0

"""`keras-mlh index build` and `search`: `keras_mlh_runtime.index.HammingIndex`,
of codes files, searched with codes or images (`keras_mlh.encoding.encode_path`)."""

import os

from keras_mlh import files
from keras_mlh.cli import options
from keras_mlh.cli.options import default_of
from keras_mlh_runtime.code_files import load_code_files, load_codes
from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.index import KINDS, HammingIndex

DESCRIPTION = "Build a Hamming index of codes (faiss) and search it."
EPILOG = """examples:
  keras-mlh index build codes.npz db.index
  keras-mlh index search db.index queries.npz -k 10
  keras-mlh index search db.index photos/ --model m.keras --json hits.json"""
BUILD_DESCRIPTION = (
    "Builds a HammingIndex from a codes file of `keras-mlh encode` (or any "
    ".npy/.npz of packed uint8 or ±1 codes, with optional `ids`) and saves it "
    "as one file with its settings and, when the codes came from image files, "
    "their paths."
)
SEARCH_DESCRIPTION = (
    "Searches an index with query codes (a codes file) or with images (.npy, "
    ".npz or a folder, encoded with --model). Prints the nearest ids (or paths) "
    "with their Hamming distances, and writes them as JSON with --json."
)
SEARCH_EPILOG = """examples:
  keras-mlh index search db.index queries.npz -k 5
  keras-mlh index search db.index query_images/ --model m.keras
  keras-mlh index search db.index queries.npz --radius 2 --json hits.json"""
# Build options: HammingIndex's parameters, with its defaults.
KNOBS = {
    "nlist": "IVF lists",
    "nprobe": "IVF lists visited per query",
    "hnsw_neighbors": "HNSW graph degree",
    "ef_search": "HNSW candidates per query, at least k; see "
    "benchmarks/results/ann.md for recall and speed",
    "ef_construction": "HNSW candidates while building",
}


def add_arguments(parser):
    commands = parser.add_subparsers(dest="index_command", metavar="COMMAND")
    commands.required = True
    for name, help, add, description, epilog in (
        ("build", "codes file -> saved index", add_build_arguments,
         BUILD_DESCRIPTION, "example:\n  keras-mlh index build codes.npz db.index --kind hnsw"),
        ("search", "query codes or images -> nearest ids and distances",
         add_search_arguments, SEARCH_DESCRIPTION, SEARCH_EPILOG),
    ):  # fmt: skip
        options.add_command(
            commands, name, help, add, description=description, epilog=epilog
        )


def add_build_arguments(parser):
    arg = parser.add_argument
    help = "codes files, .npy or .npz (several are concatenated in order, e.g. Beam's shards)"
    arg("codes", metavar="CODES", nargs="+", help=help)
    arg("index", metavar="INDEX", help="index file to write")
    kind = default_of(HammingIndex, "kind")
    approximate = " or ".join(name for name in KINDS if name != "flat")
    help = f"{kind} (exact, default), {approximate} (approximate)"
    arg("--kind", choices=KINDS, default=kind, help=help)
    for name, help in KNOBS.items():
        flag = "--" + name.replace("_", "-")
        options.add_number(parser, flag, default_of(HammingIndex, name), help)
    options.add_overwrite(parser, "replace an existing index")
    parser.set_defaults(handler=build)


def add_search_arguments(parser):
    arg = parser.add_argument
    options.add_quiet(parser)
    options.add_batch_size(parser)
    options.add_image_key(parser)
    arg("index", metavar="INDEX", help="index from `index build`")
    arg("queries", metavar="QUERIES", help="codes file, or images with --model")
    options.add_number(parser, "-k", 10, "neighbours per query")
    help = "every item within this Hamming distance instead of the top k (flat, ivf)"
    arg("--radius", type=options.non_negative_int, help=help)
    for name in ("nprobe", "ef_search"):  # None keeps the index's own setting
        help = f"{KNOBS[name].split(',')[0]} (default: the index's)"
        arg("--" + name.replace("_", "-"), type=options.positive_int, help=help)
    arg("--model", metavar="FILE", help="encode image queries with it")
    arg("--json", metavar="FILE", help="write the results as JSON")
    options.add_overwrite(parser, "replace an existing --json file")
    help, type = "print the results of the first N queries", options.non_negative_int
    options.add_number(parser, "--show", 10, help, type=type, metavar="N")
    parser.set_defaults(handler=search)


def build(args):
    """Builds a `HammingIndex` of codes files and saves it; prints its size."""
    path = files.check_output(args.index, inputs=args.codes, overwrite=args.overwrite)
    packed, ids, paths, bits = load_code_files(args.codes)
    knobs = {name: getattr(args, name) for name in KNOBS}
    index = HammingIndex(bits, kind=args.kind, **knobs)
    index.add(packed, ids, paths=None if paths is None else [str(p) for p in paths])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    index.save(path)  # fails loudly (disk full, ...): the previous index stays
    print(f"Built an index of {len(index)} {bits}-bit codes ({args.kind}): {path}")
    return 0


def search(args):
    """Searches an index with query codes or images; prints and saves the hits."""
    if args.json:
        inputs = [args.index, args.queries, args.model]
        files.check_output(args.json, inputs=inputs, overwrite=args.overwrite)
    index = HammingIndex.load(args.index)
    for name in ("nprobe", "ef_search"):
        if getattr(args, name) is not None:
            setattr(index, name, getattr(args, name))
    if args.model:
        from keras_mlh.encoding import encode_path

        what = "Query images"
        codes, images, _ = encode_path(
            args.model, args.queries, args.key, args.batch_size, args.verbose, what
        )
        queries, query_ids, query_paths = pack_codes(codes), images.ids, images.paths
    else:
        queries, query_ids, query_paths, _ = load_codes(
            args.queries, "Query codes file"
        )
    if args.radius is not None:
        hits = index.range_search(queries, args.radius)
    else:  # fewer than k items (or an approximate index) pad with -1 ids
        distances, ids = index.search(queries, args.k)
        hits = [(d[i >= 0], i[i >= 0]) for d, i in zip(distances, ids, strict=True)]
    results = [
        _result(q, *hit, query_ids, query_paths, index) for q, hit in enumerate(hits)
    ]
    if args.json:
        k = None if args.radius is not None else args.k
        report = {"index": os.path.abspath(args.index), "bits": index.bits, "k": k}
        report.update(radius=args.radius, num_queries=len(results), results=results)
        files.write_json(report, args.json)
    _print_results(results, args.show)
    if args.json:
        print(f"Wrote {len(results)} results to {os.path.abspath(args.json)}")
    return 0


def _result(q, distances, ids, query_ids, query_paths, index):
    """The JSON entry of query `q`."""
    entry = {"query": q}
    if query_ids is not None:
        entry["query_id"] = int(query_ids[q])
    if query_paths is not None:
        entry["query_path"] = str(query_paths[q])
    entry["ids"], entry["distances"] = ids.tolist(), distances.tolist()
    if index.has_paths:
        entry["paths"] = index.paths_of(ids)
    return entry


def _print_results(results, show):
    """One line per query, for the first `show` queries."""
    for entry in results[:show]:
        label = entry.get("query_path", entry.get("query_id", entry["query"]))
        items = entry.get("paths") or entry["ids"]
        hits = ", ".join(
            f"{i} ({d})" for i, d in zip(items, entry["distances"], strict=True)
        )
        print(f"query {label}: {hits or 'no results'}")
    if len(results) > show:
        print(f"... {len(results) - show} more queries (see --show, --json)")

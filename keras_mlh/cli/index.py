"""`keras-mlh index build` and `keras-mlh index search`: Hamming indexes.

An index is one file (`HammingIndex.save`): the faiss index, its settings
and, for codes of image files, their paths (id -> path), from which `search`
reports paths instead of ids. Queries are a codes file, or images encoded on
the fly with `--model`.
"""

import os

from keras_mlh import files
from keras_mlh.cli import options
from keras_mlh.cli.errors import CLIError
from keras_mlh.cli.io import load_model, require_images, require_model
from keras_mlh.cli.options import default_of
from keras_mlh.encoding import encode_images, open_images
from keras_mlh_runtime.code_files import load_code_files, load_codes
from keras_mlh_runtime.codes import pack_codes
from keras_mlh_runtime.index import KINDS, MISSING_DISTANCE, HammingIndex

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
BUILD_EPILOG = "example:\n  keras-mlh index build codes.npz db.index --kind hnsw"
SEARCH_DESCRIPTION = (
    "Searches an index with query codes (a codes file) or with images (.npy, "
    ".npz or a folder, encoded with --model). Prints the nearest ids (or paths) "
    "with their Hamming distances, and writes them as JSON with --json."
)
SEARCH_EPILOG = """examples:
  keras-mlh index search db.index queries.npz -k 5
  keras-mlh index search db.index query_images/ --model m.keras
  keras-mlh index search db.index queries.npz --radius 2 --json hits.json"""
SEARCH_K = 10  # neighbours per query
SHOW = 10  # queries printed


def add_arguments(parser):
    """Declares `keras-mlh index build` and `search` on `parser`.

    Args:
        parser: the `index` command's `argparse.ArgumentParser`.
    """
    commands = parser.add_subparsers(
        dest="index_command", metavar="COMMAND", required=True
    )
    options.add_command(
        commands,
        "build",
        "codes file -> saved index",
        add_build_arguments,
        description=BUILD_DESCRIPTION,
        epilog=BUILD_EPILOG,
    )
    options.add_command(
        commands,
        "search",
        "query codes or images -> nearest ids and distances",
        add_search_arguments,
        description=SEARCH_DESCRIPTION,
        epilog=SEARCH_EPILOG,
    )


def add_build_arguments(parser):
    """Declares the options of `keras-mlh index build` on `parser`."""
    parser.add_argument(
        "codes",
        metavar="CODES",
        nargs="+",
        help="codes files, .npy or .npz (several are concatenated in order, e.g. "
        "the shards of keras_mlh_runtime.beam_encode)",
    )
    parser.add_argument("index", metavar="INDEX", help="index file to write")
    kind = default_of(HammingIndex, "kind")
    approximate = [name for name in KINDS if name != "flat"]
    parser.add_argument(
        "--kind",
        choices=KINDS,
        default=kind,
        help=f"{kind} (exact, default), {' or '.join(approximate)} (approximate)",
    )
    for flag, name, help in (
        ("--nlist", "nlist", "IVF lists"),
        ("--nprobe", "nprobe", "IVF lists visited per query"),
        ("--hnsw-neighbors", "hnsw_neighbors", "HNSW graph degree"),
        (
            "--ef-search",
            "ef_search",
            "HNSW candidates per query, at least k; see benchmarks/results/ann.md "
            "for recall and speed",
        ),
        ("--ef-construction", "ef_construction", "HNSW candidates while building"),
    ):
        options.add_number(parser, flag, default_of(HammingIndex, name), help)
    options.add_overwrite(parser, "replace an existing index")
    parser.set_defaults(handler=build)


def add_search_arguments(parser):
    """Declares the options of `keras-mlh index search` on `parser`."""
    options.add_quiet(parser)
    options.add_batch_size(parser)
    options.add_image_key(parser)
    parser.add_argument("index", metavar="INDEX", help="index from `index build`")
    parser.add_argument(
        "queries", metavar="QUERIES", help="codes file, or images with --model"
    )
    options.add_number(parser, "-k", SEARCH_K, "neighbours per query")
    parser.add_argument(
        "--radius",
        type=options.non_negative_int,
        default=None,
        help="return every item within this Hamming distance instead of the top k "
        "(flat and ivf indexes)",
    )
    # None keeps the index's own setting.
    parser.add_argument(
        "--nprobe",
        type=options.positive_int,
        default=None,
        help="IVF lists visited per query (default: the index's)",
    )
    parser.add_argument(
        "--ef-search",
        type=options.positive_int,
        default=None,
        help="HNSW candidates per query (default: the index's)",
    )
    parser.add_argument("--model", metavar="FILE", help="encode image queries with it")
    parser.add_argument("--json", metavar="FILE", help="write the results as JSON")
    options.add_overwrite(parser, "replace an existing --json file")
    options.add_number(
        parser,
        "--show",
        SHOW,
        "print the results of the first N queries",
        type=options.non_negative_int,
        metavar="N",
    )
    parser.set_defaults(handler=search)


def build(args):
    """Builds a `HammingIndex` of codes files and saves it.

    Args:
        args: the parsed `index build` options: `codes` (one or several
            files, e.g. the shards of `keras_mlh_runtime.beam_encode`),
            `index`, the index kind and its parameters, `overwrite`.

    Returns:
        0, after printing the size of the index.
    """
    path = files.check_output(args.index, inputs=args.codes, overwrite=args.overwrite)
    packed, ids, paths, bits = load_code_files(args.codes)
    index = HammingIndex(
        bits,
        kind=args.kind,
        hnsw_neighbors=args.hnsw_neighbors,
        nlist=args.nlist,
        nprobe=args.nprobe,
        ef_search=args.ef_search,
        ef_construction=args.ef_construction,
    )
    index.add(packed, ids, paths=None if paths is None else [str(p) for p in paths])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    index.save(path)  # fails loudly (disk full, ...): the previous index stays
    print(f"Built an index of {len(index)} {bits}-bit codes ({args.kind}): {path}")
    return 0


def search(args):
    """Searches an index with query codes or images; prints and saves hits.

    Args:
        args: the parsed `index search` options: `index`, `queries`, `k` or
            `radius`, `model` for image queries, `json`, `show`.

    Returns:
        0, after printing the hits of the first `--show` queries.
    """
    if args.model:  # before the slow part
        require_model(args.model)
        require_images(args.queries, "Query images")
    if args.json:
        files.check_output(
            args.json,
            inputs=[args.index, args.queries, args.model],
            overwrite=args.overwrite,
        )
    index = HammingIndex.load(args.index)
    if args.nprobe is not None:
        index.nprobe = args.nprobe
    if args.ef_search is not None:
        index.ef_search = args.ef_search
    if args.model:
        queries, query_ids, query_paths = _encode_queries(args)
    else:
        queries, query_ids, query_paths, _ = load_codes(
            args.queries, "Query codes file"
        )
    if queries.shape[1] * 8 != index.bits:
        raise CLIError(
            f"The queries are {queries.shape[1] * 8}-bit codes but the index holds "
            f"{index.bits}-bit codes; encode both with the same model."
        )
    results = [
        _result(q, ids, distances, query_ids, query_paths, index)
        for q, (distances, ids) in enumerate(_neighbours(index, queries, args))
    ]
    if args.json:
        files.write_json(
            {
                "index": os.path.abspath(args.index),
                "bits": index.bits,
                "k": None if args.radius is not None else args.k,
                "radius": args.radius,
                "num_queries": len(results),
                "results": results,
            },
            args.json,
        )
    _print_results(results, args.show)
    if args.json:
        print(f"Wrote {len(results)} results to {os.path.abspath(args.json)}")
    return 0


def _encode_queries(args):
    """Packed codes, ids and paths of query images encoded with `--model`."""
    model = load_model(args.model)
    images = open_images(
        args.queries,
        model.image_shape,
        key=args.key,
        what="Query images",
        model_path=args.model,
    )
    codes = encode_images(model, images, args.batch_size, args.verbose)
    return pack_codes(codes), images.ids, images.paths


def _neighbours(index, queries, args):
    """`(distances, ids)` per query: all within `--radius`, else the top `-k`."""
    if args.radius is not None:
        return index.range_search(queries, args.radius)
    distances, ids = index.search(queries, args.k)
    # Fewer than k items (or an approximate index) pad with -1 ids.
    return [
        (d[(i >= 0) & (d != MISSING_DISTANCE)], i[i >= 0])
        for d, i in zip(distances, ids, strict=True)
    ]


def _result(q, ids, distances, query_ids, query_paths, index):
    """The JSON entry of query `q`."""
    entry = {"query": q}
    if query_ids is not None:
        entry["query_id"] = int(query_ids[q])
    if query_paths is not None:
        entry["query_path"] = str(query_paths[q])
    entry["ids"] = [int(v) for v in ids]
    entry["distances"] = [int(v) for v in distances]
    if index.has_paths:
        entry["paths"] = index.paths_of(ids)
    return entry


def _print_results(results, show):
    """One line per query, for the first `show` queries (all for `None`)."""
    shown = results if show is None else results[:show]
    for entry in shown:
        label = entry.get("query_path", entry.get("query_id", entry["query"]))
        items = entry.get("paths") or entry["ids"]
        hits = ", ".join(
            f"{item} ({distance})"
            for item, distance in zip(items, entry["distances"], strict=True)
        )
        print(f"query {label}: {hits or 'no results'}")
    if len(shown) < len(results):
        print(f"... {len(results) - len(shown)} more queries (see --show, --json)")

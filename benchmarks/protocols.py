"""Protocol benchmark: MLH against its baselines on protocols that tell them apart.

Run by hand (nohup for the full grid). Every run trains one mode with the
package defaults (`keras_mlh.MLH`, `keras_mlh.training.default_training`) and
measures mAP@all of the test queries against the database. Writes
`benchmarks/results/protocols.json` (a list of rows, one per run) and
`protocols.md` (per protocol and bit length: mean ± std per mode over seeds,
and the paired per-seed differences mlh - center and mlh - pairwise).

Protocols, all built from the offline MNIST-5k digits with the package's own
split helpers (the split and the training shuffle are seeded by the run's
seed, so the modes of one seed see exactly the same data):

- `mnist5k-full`: 1,000 queries / 4,000 database images, trained on the whole
  database (the README's ablation protocol; seed 0 is its split).
- `mnist5k-small-train`: the same queries and database, trained on 100 images
  per class of the database (stratified, seeded): training set << database,
  the shape of the field's CIFAR-10 protocol.
- `mnist5k-unseen`: classes 7, 8, 9 dropped from the training set
  (`keras_mlh.datasets.hashing_data.drop_classes`); queries and database keep
  them. mAP@all over all queries, plus the four seen/unseen numbers
  (`keras_mlh.evaluation.seen_unseen_map`). Its `--validation` split drops
  classes 5 and 6 from the rest of the training set in the same way
  (pseudo-unseen), so that the protocol can be tuned without the test
  classes.
- `mnist5k-multilabel`: composites of real digits (`multilabel_composites`),
  each labelled multi-hot with every digit it shows; relevant = shares at
  least one label (the deep-hashing rule for MS-COCO / NUS-WIDE).

Two more on real photographs, Fashion-MNIST's 70,000 images read offline from
its idx files (`keras_mlh.datasets.fashion_mnist`; `--fashion-mnist DIR`,
default Debian's `dataset-fashion-mnist` folder), measured at mAP@all and
mAP@1000:

- `fashion-cifar`: the field's CIFAR-10 shape on the pooled 70,000: 1,000
  queries (100 per class), the other 69,000 the database, 5,000 training
  images (500 per class) drawn from the database.
- `fashion-full`: the files' split: the 60,000 training images are the
  training set and the database; 1,000 queries (100 per class) from the
  10,000 test images.

    python benchmarks/protocols.py                        # the whole grid
    python benchmarks/protocols.py --bits 32 --protocols mnist5k-unseen
    python benchmarks/protocols.py --quick                # CI smoke run
    python benchmarks/protocols.py --report-only          # re-render the table

The script is resumable: rows already in the JSON (same protocol, mode, bits,
seed and epochs) are skipped, and the JSON is rewritten atomically after
every run, so an interrupted grid continues where it stopped. Runs are
interleaved (for each bit length and seed, every protocol and mode) so that
a paired comparison is complete early and machine load hits modes alike.
"""

import argparse
import collections
import dataclasses
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from _common import (  # noqa: E402
    add_override_option,
    add_result_options,
    machine,
    mode_bars,
)

PROTOCOLS = (
    "mnist5k-full",
    "mnist5k-small-train",
    "mnist5k-unseen",
    "mnist5k-multilabel",
    "fashion-cifar",
    "fashion-full",
)
# Real photographs (Fashion-MNIST's 70,000 idx images, offline), measured at
# the top 1,000 too: the field reports CIFAR-10 at mAP@1000 as often as @all.
FASHION_PROTOCOLS = ("fashion-cifar", "fashion-full")
TOP_K = 1000
# fashion-cifar, the field's CIFAR-10 shape: 100 queries and 500 training
# images (drawn from the database) per class; the database is the rest.
FASHION_QUERIES_PER_CLASS = 100
FASHION_TRAIN_PER_CLASS = 500
FASHION_SIZE = {
    "queries_per_class": FASHION_QUERIES_PER_CLASS,
    "train_per_class": FASHION_TRAIN_PER_CLASS,
}
FASHION_QUICK = {"queries_per_class": 3, "train_per_class": 10, "database": 300}
MODES = ("mlh", "center", "pairwise", "csq", "mlh_no_moh", "mlh_no_mutual")
# What mlh is measured against (paired differences), where they ran.
BASELINES = ("center", "pairwise", "csq")
UNSEEN_CLASSES = (7, 8, 9)
# The unseen protocol's validation: seen classes held out like unseen ones.
PSEUDO_UNSEEN_CLASSES = (5, 6)
TRAIN_PER_CLASS = 100
# Composites: a 2x2 grid of 28x28 tiles holding 2 or 3 digits of distinct
# classes (at least one tile empty), average-pooled back to 28x28 so that a
# run costs the same as on single digits.
COMPOSITE_DIGITS = (2, 3)
QUICK = {"limit": 300, "num_queries": 60, "train_per_class": 10}
# A run's identity: the JSON keeps at most one row per key (`_key`).
KEY = ("protocol", "mode", "bits", "seed", "epochs", "setting", "validation")


@dataclasses.dataclass
class Protocol:
    """The data of one protocol at one seed.

    Attributes:
        name: the protocol's name.
        data: a `keras_mlh.datasets.HashingData`; the model trains on
            `data.train` and is measured on its queries against its database.
        unseen_classes: classes held out of training (seen/unseen protocol).
        config: JSON-safe description of how the data was made.
    """

    name: str
    data: object
    unseen_classes: tuple = ()
    config: dict = dataclasses.field(default_factory=dict)


def multilabel_composites(
    images, labels, count, seed, num_classes=10, digits=COMPOSITE_DIGITS
):
    """Multi-label images made of real digits, labelled with every digit shown.

    Each composite draws `k` distinct classes (`k` uniform in `digits`), one
    random source digit of each class, and puts them in `k` random tiles of a
    2x2 grid of the source images' size; the other tiles stay black. The grid
    is average-pooled 2x2 back to the source size. Its label is the multi-hot
    row of the `k` classes. Source digits are drawn with replacement across
    composites (each about `count * mean(k) / len(images)` times).

    Args:
        images: `(n, h, w, c)` uint8 digits (h and w even).
        labels: class ids `(n,)`.
        count: number of composites.
        seed: seed of the draw.
        num_classes: width of the multi-hot labels.
        digits: `(min, max)` digits per composite, at most 4.

    Returns:
        `(composites (count, h, w, c) uint8, multi-hot float32 labels
        (count, num_classes))`.

    Example:
    >>> data = keras_mlh.datasets.mnist5k()
    >>> x, y = multilabel_composites(data.x_query, data.y_query, 1000, seed=0)
    >>> x.shape, set(y.sum(axis=1))
    ((1000, 28, 28, 1), {2.0, 3.0})
    """
    images, labels = np.asarray(images), np.asarray(labels)
    low, high = digits
    if not 1 <= low <= high <= 4:
        raise ValueError(f"`digits` must be within 1..4. Received: {digits}")
    rng = np.random.default_rng(seed)
    n, h, w, c = images.shape
    by_class = [np.flatnonzero(labels == k) for k in range(num_classes)]
    present = [k for k in range(num_classes) if len(by_class[k])]
    grid = np.zeros((count, 2 * h, 2 * w, c), np.float32)
    multi_hot = np.zeros((count, num_classes), np.float32)
    for i in range(count):
        k = int(rng.integers(low, high + 1))
        classes = rng.choice(present, size=k, replace=False)
        tiles = rng.choice(4, size=k, replace=False)
        for cls, tile in zip(classes, tiles, strict=True):
            row, col = divmod(int(tile), 2)
            source = images[rng.choice(by_class[cls])]
            grid[i, row * h : (row + 1) * h, col * w : (col + 1) * w] = source
            multi_hot[i, cls] = 1.0
    pooled = grid.reshape(count, h, 2, w, 2, c).mean(axis=(2, 4))
    return np.round(pooled).astype(np.uint8), multi_hot


def _validation_sizes(validation):
    """`--validation`'s held-out queries and held-out database (0: none)."""
    if isinstance(validation, str):
        queries, database = validation.split("+")
        return int(queries), int(database)
    return validation, 0


def make_protocol(name, seed, quick=False, validation=None, fashion_path=None):
    """The data of protocol `name`, split and subsampled with `seed`.

    With `validation` (a count, or a fraction of the training set if < 1),
    the queries are held out of the protocol's training set and searched
    against the rest of it (`hold_out_validation`): the numbers to tune on,
    the test queries unused. `fashion_path` is the folder of the
    Fashion-MNIST idx files (default: Debian's).
    """
    from keras_mlh.datasets.hashing_data import drop_classes, hold_out_validation

    if name in FASHION_PROTOCOLS:
        data, config = _fashion(name, seed, quick, fashion_path)
    else:
        data, config = _mnist5k(name, seed, quick)
    unseen = UNSEEN_CLASSES if name == "mnist5k-unseen" else ()
    if validation:
        num_queries, num_database = _validation_sizes(validation)
        held_out, size = num_queries + num_database, len(data.x_train)
        if num_queries >= 1 and held_out >= size:  # counts, not a fraction
            raise SystemExit(
                f"protocols.py: error: --validation {validation} holds out "
                f"{held_out} images, but {name}{' --quick' if quick else ''} "
                f"trains on {size}: hold out fewer."
            )
        split = hold_out_validation(data, num_queries, seed=seed)
        train, database = split.data, split.database
        searched = "searched against the rest"
        if num_database:
            # The database held out too: the test database of the CIFAR-shaped
            # protocols is mostly images never trained on, and one of trained
            # images rewards codes that fit them (the center losses).
            rest = hold_out_validation(train, num_database, seed=seed + 1)
            train, database = rest.data, rest.queries
            searched = f"searched against {num_database} others held out"
        data = _with_parts(train, query=split.queries, database=database)
        config["validation"] = {
            "held_out": validation,
            "queries": f"held out of the training set, {searched}",
        }
        unseen = ()
        if name == "mnist5k-unseen":
            # The training set has no unseen class left: two of its own
            # classes play the unseen ones, dropped from training only.
            unseen = PSEUDO_UNSEEN_CLASSES
            data = drop_classes(data, unseen)
            config["validation"]["pseudo_unseen_classes"] = list(unseen)
    config.update(
        num_train=len(data.x_train),
        num_queries=len(data.x_query),
        num_database=len(data.x_database),
        chance_map=_chance_map(data, seed),
    )
    return Protocol(name, data, unseen, config)


def _fashion(name, seed, quick, path):
    """fashion-cifar or fashion-full at `seed` (see the module docstring)."""
    from keras_mlh.datasets import fashion_mnist
    from keras_mlh.datasets.hashing_data import split_indices

    full = fashion_mnist(path, seed=seed)
    classes = full.num_classes
    config = {"source": "fashion-mnist", "split_seed": seed, "quick": quick}
    if name == "fashion-full":
        # The files' own split: train = database; queries from the test images.
        queries = 3 * classes if quick else 1000
        x_train, y_train = full.x_train, full.y_train
        if quick:
            keep, _ = split_indices(y_train, FASHION_QUICK["database"], seed)
            x_train, y_train = x_train[keep], y_train[keep]
        picked, _ = split_indices(full.y_query, queries, seed)
        x_query, y_query = full.x_query[picked], full.y_query[picked]
        x_db, y_db = x_train, y_train
    else:
        x, y = pooled_fashion(full)
        q, db, t = fashion_cifar_split(y, seed, quick)
        x_query, y_query, x_db, y_db = x[q], y[q], x[db], y[db]
        x_train, y_train = x[t], y[t]
        size = FASHION_QUICK if quick else FASHION_SIZE
        config.update({k: size[k] for k in ("queries_per_class", "train_per_class")})
    # `full` has the class names, batch size and seed: only the parts change.
    data = _with_parts(
        full, train=(x_train, y_train), query=(x_query, y_query), database=(x_db, y_db)
    )
    return data, config


def _with_parts(data, **parts):
    """`data` with parts replaced: `train=`, `query=` and `database=` take an
    `(images, labels)` pair."""
    fields = {}
    for part, (x, y) in parts.items():
        fields[f"x_{part}"], fields[f"y_{part}"] = x, y
    return dataclasses.replace(data, **fields)


def pooled_fashion(data):
    """All 70,000 images and labels, training file first (the field pools
    CIFAR-10's 60,000 the same way before splitting)."""
    x = np.concatenate([data.x_train, data.x_query])
    y = np.concatenate([data.y_train, data.y_query])
    return x, y


def fashion_cifar_split(labels, seed, quick=False):
    """fashion-cifar's seeded, stratified split of the pooled labels.

    Returns:
        `(query, database, train)` indices into `labels`; the training
        images are drawn from the database, queries are disjoint from both.
    """
    from keras_mlh.datasets.hashing_data import split_indices

    size = FASHION_QUICK if quick else FASHION_SIZE
    pool = np.arange(len(labels))
    if quick:
        pool, _ = split_indices(labels, size["database"], seed)
        pool = np.sort(pool)
    classes = int(labels.max()) + 1
    q, db = split_indices(labels[pool], size["queries_per_class"] * classes, seed)
    t, _ = split_indices(labels[pool][db], size["train_per_class"] * classes, seed)
    return pool[q], pool[db], pool[db][t]


def _mnist5k(name, seed, quick):
    """The MNIST-5k protocols at `seed` (see the module docstring)."""
    import keras_mlh
    from keras_mlh.datasets.hashing_data import drop_classes, split_indices

    size = QUICK if quick else {"limit": None, "num_queries": 1000}
    data = keras_mlh.datasets.mnist5k(
        num_queries=size["num_queries"], seed=seed, limit=size["limit"]
    )
    config = {"source": "mnist5k", "split_seed": seed, **size}
    if name == "mnist5k-small-train":
        per_class = QUICK["train_per_class"] if quick else TRAIN_PER_CLASS
        # The library's stratified, seeded pick: `per_class` images of each class.
        picked, _ = split_indices(data.y_train, per_class * data.num_classes, seed)
        data = _with_parts(data, train=(data.x_train[picked], data.y_train[picked]))
        config["train_per_class"] = per_class
    elif name == "mnist5k-unseen":
        data = drop_classes(data, UNSEEN_CLASSES)
        config["unseen_classes"] = list(UNSEEN_CLASSES)
    elif name == "mnist5k-multilabel":
        # Queries are made of query digits only, so no digit image is both
        # trained on and searched for.
        x_query, y_query = multilabel_composites(
            data.x_query, data.y_query, len(data.x_query), seed=seed
        )
        x_db, y_db = multilabel_composites(
            data.x_database, data.y_database, len(data.x_database), seed=seed + 1
        )
        # `data.seed` is `seed`: only the parts change.
        data = _with_parts(
            data, train=(x_db, y_db), query=(x_query, y_query), database=(x_db, y_db)
        )
        config["composite"] = {
            "grid": "2x2 tiles, average-pooled to 28x28",
            "digits": list(COMPOSITE_DIGITS),
            "relevance": "shares at least one label",
        }
    elif name != "mnist5k-full":
        raise ValueError(f"Unknown protocol {name!r}; use one of {PROTOCOLS}.")
    return data, config


def _chance_map(data, seed):
    """mAP@all of random codes: the floor a protocol's numbers start from."""
    from keras_mlh.metrics import mean_average_precision

    rng = np.random.default_rng(seed)
    q = rng.choice([-1, 1], size=(len(data.x_query), 32)).astype(np.int8)
    db = rng.choice([-1, 1], size=(len(data.x_database), 32)).astype(np.int8)
    return mean_average_precision(q, data.y_query, db, data.y_database)


def _keras_layers(value, name=None):
    """`--set` values naming Keras layers as Keras layers, e.g. an augmentation:
    `[{'class_name': 'RandomFlip', 'config': {'mode': 'horizontal'}}]`; a
    `backbone` dict is the default CNN's arguments (`{'filters': [64, 128, 256]}`)."""
    import keras

    if name == "backbone" and isinstance(value, dict) and "class_name" not in value:
        from keras_mlh.models.backbones import SmallConvBackbone

        return SmallConvBackbone(**value)
    if isinstance(value, list):
        return [_keras_layers(v) for v in value]
    if isinstance(value, dict):  # a layer's config, never a string
        return keras.saving.deserialize_keras_object(value, vars(keras.layers))
    return value


def run_one(protocol, mode, bits, seed, epochs, overrides=None):
    """Trains one mode on one protocol; returns its row.

    `overrides` are `MLH` arguments replacing the defaults (`--set`).
    """
    import keras

    import keras_mlh
    from keras_mlh.evaluation import seen_unseen_map
    from keras_mlh.metrics import mean_average_precision
    from keras_mlh.training import default_training

    data = protocol.data
    keras.utils.set_random_seed(seed)
    model = keras_mlh.MLH(
        num_classes=data.num_classes,
        bits=bits,
        mode=mode,
        **{k: _keras_layers(v, k) for k, v in (overrides or {}).items()},
    )
    recipe = default_training(epochs=epochs, steps_per_epoch=len(data.train))
    model.compile(optimizer=recipe.optimizer)
    start = time.perf_counter()
    model.fit(data.train, epochs=recipe.epochs, verbose=0)
    seconds = time.perf_counter() - start
    query_codes = model.encode(data.x_query)
    database_codes = model.encode(data.x_database)
    args = (query_codes, data.y_query, database_codes, data.y_database)
    row = {
        "protocol": protocol.name,
        "mode": mode,
        "bits": bits,
        "seed": seed,
        "epochs": recipe.epochs,
        "map": mean_average_precision(*args),
        "train_seconds": round(seconds, 1),
        "step_ms": round(1000 * seconds / (recipe.epochs * len(data.train)), 2),
    }
    if protocol.name in FASHION_PROTOCOLS:  # the field's CIFAR-10 cut-off
        row[f"map@{TOP_K}"] = mean_average_precision(*args, k=TOP_K)
    if protocol.unseen_classes:
        row["seen_unseen"] = seen_unseen_map(*args, protocol.unseen_classes)
    if len(model.branches) == 2:
        # How far apart the two branches end up (the "they converge").
        row["branch_maps"] = {
            branch: mean_average_precision(
                model.encode(data.x_query, branch=branch),
                data.y_query,
                model.encode(data.x_database, branch=branch),
                data.y_database,
            )
            for branch in model.branches
        }
    row["config"] = {
        "protocol": protocol.config,
        "model": _model_config(model, overrides or {}),
        "training": {
            "recipe": "keras_mlh.training.default_training",
            "epochs": recipe.epochs,
            "steps_per_epoch": len(data.train),
            "batch_size": data.batch_size,
        },
    }
    return row


def _model_config(model, overrides):
    """The row's model config; a `--set backbone={...}` stays those arguments."""
    config = model.get_config()
    config = {
        k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")
    }
    if isinstance(overrides.get("backbone"), dict):  # not 10 KB of layer configs
        config["backbone"] = overrides["backbone"]
    return config


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--protocols", nargs="+", default=list(PROTOCOLS), choices=PROTOCOLS
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument(
        "--bits",
        type=int,
        nargs="+",
        default=[32, 16, 64],
        help="run in this order (default: 32 first, then 16 and 64)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument(
        "--epochs", type=int, default=None, help="default: the package's default"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: unseen + multilabel protocols on 300 digits, "
        "1 seed, 16 bits, 1 epoch",
    )
    add_override_option(parser, "mutual_weight=0.5")
    parser.add_argument(
        "--fashion-mnist",
        default=None,
        metavar="DIR",
        help="folder of the Fashion-MNIST idx files (default: Debian's "
        "dataset-fashion-mnist package, /usr/share/datasets/fashion-mnist)",
    )
    parser.add_argument(
        "--validation",
        type=_validation_option,
        default=None,
        metavar="N[+M]",
        help="tune: hold N training images out (a fraction if < 1) as the queries, "
        "searched against the rest of the training set, or with +M against M "
        "more held out (a database never trained on); the test queries unused",
    )
    add_result_options(
        parser,
        "protocols, protocols_validation, protocols_quick",
        {
            "action": "store_true",
            "help": "train nothing: re-render the table from the JSON",
        },
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.bits, args.seeds, args.epochs = [16], [0], args.epochs or 1
        if args.protocols == list(PROTOCOLS):
            args.protocols = ["mnist5k-unseen", "mnist5k-multilabel"]
        if args.modes == list(MODES):
            args.modes = ["mlh", "center", "pairwise"]
    if args.name is None:
        args.name = "protocols_validation" if args.validation else "protocols"
        if args.quick:
            args.name += "_quick"
    args.setting = ", ".join(f"{k}={v!r}" for k, v in args.overrides)
    return args


def _validation_option(text):
    """`N`, a fraction, or `N+M` (counts) -> the row's `validation` value."""
    try:
        if "+" in text:
            queries, database = (int(part) for part in text.split("+"))
            if queries > 0 and database > 0:
                return f"{queries}+{database}"
        else:
            value = float(text)
            if value > 0:
                return int(value) if value >= 1 else value
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"expected N, a fraction or N+M; got {text!r}")


def load_rows(path):
    import json

    if not os.path.exists(path):
        return []
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError(f"{path} is not a list of runs; move it away or fix it.")
    return rows


def _key(row):
    defaults = {"setting": "", "validation": None}
    return tuple(row.get(k, defaults.get(k)) for k in KEY)


# ---------------------------------------------------------------- the report


def _mean_std(values):
    values = np.asarray(values, float)
    return float(values.mean()), float(values.std())


def _group(row):
    """What a table row gathers over seeds: bits, epochs, setting, validation."""
    return (row["bits"], row["epochs"], row.get("setting", ""), row.get("validation"))


def _rows_of(rows, protocol, group, mode=None):
    return [
        r
        for r in rows
        if r["protocol"] == protocol
        and _group(r) == group
        and (mode is None or r["mode"] == mode)
    ]


def paired_differences(rows, protocol, group, mode, baseline):
    """Per-seed `map(mode) - map(baseline)` over seeds that ran both.

    The baseline is taken from the same setting where it ran with it, else
    from the default setting (a tuning run of `mlh` against the plain
    baselines).
    """
    default = (*group[:2], "", group[3])
    maps = {}
    for which, name in ((group, mode), (default, baseline), (group, baseline)):
        for r in _rows_of(rows, protocol, which, name):
            maps[(name, r["seed"])] = r["map"]  # the same setting wins
    return {
        seed: maps[(mode, seed)] - maps[(baseline, seed)]
        for seed in sorted({seed for _, seed in maps})
        if (mode, seed) in maps and (baseline, seed) in maps
    }


def _diff_cell(diffs):
    if not diffs:
        return "—"
    values = np.array(list(diffs.values()))
    mean, std = _mean_std(values)
    return (
        f"{100 * mean:+.2f} ± {100 * std:.2f} "
        f"[{100 * values.min():+.2f}, {100 * values.max():+.2f}] (n={len(values)})"
    )


def verdict(rows, protocol, group):
    """One sentence on mlh against both baselines (paired, in mAP points)."""
    parts = []
    for baseline in BASELINES:
        diffs = paired_differences(rows, protocol, group, "mlh", baseline)
        if not diffs:
            continue
        values = np.array(list(diffs.values()))
        mean, std = _mean_std(values)
        if len(values) < 2:
            word = "one seed only"
        elif abs(mean) <= std:
            word = "within the spread"
        else:
            word = "wins" if mean > 0 else "loses"
        parts.append(f"vs {baseline} {100 * mean:+.2f} pts ({word})")
    branches = [r["branch_maps"] for r in _rows_of(rows, protocol, group, "mlh")
                if "branch_maps" in r]  # fmt: skip
    if branches:
        center, pairwise = (
            np.mean([b[k] for b in branches]) for k in ("center", "pairwise")
        )
        parts.append(
            f"mlh's own branches: center {center:.4f}, pairwise {pairwise:.4f}"
        )
    return "; ".join(parts)


def _label(group):
    bits, epochs, setting, validation = group
    label = f"{bits} | {epochs} | {setting or 'defaults'}"
    return label + (f" (validation {validation})" if validation else "")


def markdown(rows, command):
    validation = any(r.get("validation") for r in rows)
    measured = (
        "validation queries held out of each protocol's training set, searched "
        "against the rest of it (the test queries unused)"
        if validation
        else "the test queries against the database"
    )
    lines = [
        "# MLH against its baselines on the protocols",
        "",
        f"mAP@all of {measured}; small CNN, `default_training`, package "
        "defaults unless the setting says otherwise; mean ± std over seeds "
        "(n). The split, the training subset and the initialization are all "
        "seeded by the run's seed, so the modes of one seed see the same "
        "data: differences are paired per seed, in mAP points (x100): mean "
        "± std [min, max] (n seeds). A verdict says `wins`/`loses` only when "
        "the mean difference exceeds its spread. Runs were made on a shared "
        "2-core CPU under `nice` (`train_seconds` in the JSON is indicative "
        "only). A setting may name a former default its rows ran with (MLH's "
        "`center_weight=1.0`, the default until 0.25): add that `--set` to "
        "the row's command to reproduce it.",
        "",
        f"Machine: {rows[0].get('machine', '?')}. Rendered by `{command}` from "
        "rows made by:",
        "",
        *(f"- `{c}`" for c in dict.fromkeys(r.get("command", "?") for r in rows)),
    ]
    order = {name: i for i, name in enumerate(PROTOCOLS)}
    lines += ["", *summary_table(rows)]
    for protocol in sorted({r["protocol"] for r in rows}, key=order.get):
        groups = sorted(
            {_group(r) for r in rows if r["protocol"] == protocol},
            key=lambda g: (g[2] != "", *map(str, g)),
        )
        sizes = _rows_of(rows, protocol, groups[0])[0]["config"]["protocol"]
        lines += [
            "",
            f"## {protocol}",
            "",
            f"{sizes['num_train']} training images, {sizes['num_queries']} "
            f"queries, {sizes['num_database']} database images; random 32-bit "
            f"codes score {sizes['chance_map']:.3f}.",
            "",
            "| bits | epochs | setting | "
            + " | ".join(MODES)
            + "".join(f" | mlh − {b}" for b in BASELINES)
            + " |",
            "|---|---|---|" + "---|" * (len(MODES) + len(BASELINES)),
        ]
        for group in groups:
            cells = []
            for mode in MODES:
                maps = [r["map"] for r in _rows_of(rows, protocol, group, mode)]
                if maps:
                    mean, std = _mean_std(maps)
                    cells.append(f"{mean:.4f} ± {std:.4f} ({len(maps)})")
                else:
                    cells.append("—")
            diffs = [
                _diff_cell(paired_differences(rows, protocol, group, "mlh", b))
                for b in BASELINES
            ]
            lines.append(f"| {_label(group)} | " + " | ".join(cells + diffs) + " |")
        lines.append("")
        for group in groups:
            label = (
                _label(group).replace(" | ", " bits, ", 1).replace(" | ", " epochs, ")
            )
            lines.append(f"- {label}: mlh {verdict(rows, protocol, group)}.")
        if any("seen_unseen" in r for r in rows if r["protocol"] == protocol):
            lines += _seen_unseen_table(rows, protocol, groups)
        if any(f"map@{TOP_K}" in r for r in rows if r["protocol"] == protocol):
            lines += _top_k_table(rows, protocol, groups)
    return "\n".join(lines) + "\n"


def summary_table(rows):
    """The README's table: mlh, center, pairwise and the paired differences."""
    lines = [
        "| protocol | bits | epochs | mlh | "
        + " | ".join(BASELINES)
        + "".join(f" | mlh − {b}" for b in BASELINES)
        + " |",
        "|---|---|---|---|" + "---|" * 2 * len(BASELINES),
    ]
    order = {name: i for i, name in enumerate(PROTOCOLS)}
    groups = sorted(
        {(r["protocol"], _group(r)) for r in rows if not r.get("setting")},
        key=lambda g: (order.get(g[0], 99), *map(str, g[1])),
    )
    for protocol, group in groups:
        cells = []
        for mode in ("mlh", *BASELINES):
            maps = [r["map"] for r in _rows_of(rows, protocol, group, mode)]
            cells.append(f"{np.mean(maps):.4f} ({len(maps)})" if maps else "—")
        for baseline in BASELINES:
            diffs = paired_differences(rows, protocol, group, "mlh", baseline)
            values = np.array(list(diffs.values()))
            cells.append(
                f"{100 * values.mean():+.2f} ± {100 * values.std():.2f} "
                f"(n={len(values)})"
                if len(values)
                else "—"
            )
        bits, epochs = group[:2]
        lines.append(f"| {protocol} | {bits} | {epochs} | " + " | ".join(cells) + " |")
    return lines


def _top_k_table(rows, protocol, groups):
    """mAP@1000 and training seconds per run (mean over seeds) of each mode."""
    lines = [
        "",
        f"mAP@{TOP_K} and seconds of training (mean over seeds; one process "
        "per run on the same machine, so the ratios compare):",
        "",
        "| bits | epochs | setting | mode | mAP@all | " + f"mAP@{TOP_K} | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for group in groups:
        for mode in MODES:
            mine = [
                r for r in _rows_of(rows, protocol, group, mode) if f"map@{TOP_K}" in r
            ]
            if mine:
                cells = [
                    f"{np.mean([r[key] for r in mine]):{fmt}}"
                    for key, fmt in (
                        ("map", ".4f"),
                        (f"map@{TOP_K}", ".4f"),
                        ("train_seconds", ".0f"),
                    )
                ]
                lines.append(
                    f"| {_label(group)} | {mode} | " + " | ".join(cells) + " |"
                )
    return lines


def _seen_unseen_table(rows, protocol, groups):
    columns = ("seen@seen", "seen@all", "unseen@unseen", "unseen@all")
    lines = [
        "",
        "Seen/unseen (mean over seeds): queries of one group against the "
        "database of one group or all of it.",
        "",
        "| bits | epochs | setting | mode | " + " | ".join(columns) + " |",
        "|---|---|---|---|" + "---|" * len(columns),
    ]
    for group in groups:
        for mode in MODES:
            mine = [
                r["seen_unseen"]
                for r in _rows_of(rows, protocol, group, mode)
                if "seen_unseen" in r
            ]
            if not mine:
                continue
            cells = []
            for column in columns:
                values = [m[column] for m in mine if m[column] is not None]
                cells.append(f"{np.mean(values):.4f}" if values else "—")
            lines.append(f"| {_label(group)} | {mode} | " + " | ".join(cells) + " |")
    return lines


def plot(rows):
    """A panel per protocol: mAP of each mode by bit length, package defaults.

    Bars are the mean over seeds, whiskers their std; rows with a setting
    (tuning runs) or without a finite mAP are left out.

    Returns:
        A matplotlib `Figure`, or `None` when no row has the defaults.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    # (protocol, epochs, validation) -> (mode, bits) -> the seeds' mAPs
    panels = collections.defaultdict(lambda: collections.defaultdict(list))
    for r in rows:
        if not r.get("setting") and r["mode"] in MODES and np.isfinite(r["map"]):
            panel = (r["protocol"], r["epochs"], r.get("validation"))
            panels[panel][(r["mode"], r["bits"])].append(r["map"])
    if not panels:
        return None
    order = sorted(
        panels,
        key=lambda p: (
            PROTOCOLS.index(p[0]) if p[0] in PROTOCOLS else 99,
            p[1],
            p[2] is not None,  # the test queries' panel before validation
            str(p[2]),
        ),
    )
    columns = min(2, len(order))
    rows_count = -(-len(order) // columns)
    figure = Figure(figsize=(5 * columns, 3.2 * rows_count + 0.6), dpi=100)
    for i, (protocol, epochs, validation) in enumerate(order):
        axes = figure.add_subplot(rows_count, columns, i + 1)
        maps = panels[(protocol, epochs, validation)]
        cells = {key: _mean_std(values) for key, values in maps.items()}
        modes = [m for m in MODES if any(mode == m for mode, _ in cells)]
        bits_list = sorted({bits for _, bits in cells})
        low = mode_bars(axes, cells, modes, bits_list)
        high = max(mean + std for mean, std in cells.values())
        axes.set_ylim(max(0.0, low - 0.02), min(1.0, high + 0.02))
        held_out = f", validation {validation}" if validation else ""
        axes.set_title(f"{protocol} ({epochs} epochs{held_out})", fontsize=10)
        axes.set_ylabel("mAP@all")
    handles, labels = max(
        (a.get_legend_handles_labels() for a in figure.axes), key=lambda h: len(h[1])
    )
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    figure.tight_layout(rect=(0, 0.6 / (3.2 * rows_count + 0.6), 1, 1))
    return figure


def write_report(rows, folder, name, command):
    from keras_mlh.files import atomic_path, write_json

    write_json(rows, os.path.join(folder, f"{name}.json"))
    text = markdown(rows, command) if rows else "# No runs yet\n"
    with atomic_path(os.path.join(folder, f"{name}.md"), make_folders=True) as temp:
        with open(temp, "w") as f:
            f.write(text)
    figure = plot(rows)
    if figure is not None:
        with atomic_path(os.path.join(folder, f"{name}.png")) as temp:
            figure.savefig(temp, format="png")  # the temporary name has no suffix
    return text


def main(argv=None):
    args = parse_args(argv)
    command = " ".join(
        ["python benchmarks/protocols.py", *(sys.argv[1:] if argv is None else argv)]
    )
    path = os.path.join(args.out, f"{args.name}.json")
    rows = load_rows(path)
    if args.report_only:
        print(write_report(rows, args.out, args.name, command))
        return 0
    import keras_mlh
    from keras_mlh.training import DEFAULT_EPOCHS

    epochs = DEFAULT_EPOCHS if args.epochs is None else args.epochs
    overrides = dict(args.overrides)
    done = {_key(r) for r in rows}
    for bits in args.bits:
        for seed in args.seeds:
            for name in args.protocols:
                todo = [
                    m
                    for m in args.modes
                    if (name, m, bits, seed, epochs, args.setting, args.validation)
                    not in done
                ]
                if not todo:
                    continue
                protocol = make_protocol(
                    name,
                    seed,
                    quick=args.quick,
                    validation=args.validation,
                    fashion_path=args.fashion_mnist,
                )
                for mode in todo:
                    row = run_one(protocol, mode, bits, seed, epochs, overrides)
                    row["setting"] = args.setting
                    if args.validation:
                        row["validation"] = args.validation
                    row["overrides"] = overrides
                    row["machine"] = machine()
                    row["version"] = keras_mlh.__version__
                    row["command"] = command
                    rows.append(row)
                    done.add(_key(row))
                    write_report(rows, args.out, args.name, command)
                    print(
                        f"{name:20s} {mode:14s} bits={bits} seed={seed} "
                        f"mAP={row['map']:.4f} train={row['train_seconds']:.0f}s",
                        flush=True,
                    )
    print(write_report(rows, args.out, args.name, command))
    return 0


if __name__ == "__main__":
    sys.exit(main())

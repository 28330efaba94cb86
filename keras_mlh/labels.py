"""Labels: class ids `(n,)` or `(n, 1)`, or multi-hot 0/1 rows `(n, classes)`."""

import numpy as np


def is_class_id_column(shape):
    """Whether labels of `shape` (`None` entries allowed) are class ids.

    Example:
    >>> is_class_id_column((5, 1)), is_class_id_column((5, 3))
    (True, False)
    """
    shape = tuple(shape)
    return len(shape) == 1 or (len(shape) == 2 and shape[1] == 1)


def check_labels(labels, num_classes=None, num_images=None, name="labels"):
    """Checks labels as the model and the metrics take them.

    Args:
        labels: class ids `(n,)` / `(n, 1)`, or multi-hot 0/1 rows.
        num_classes: `None` checks neither the id range nor the width.
        num_images: the number of labels expected.
        name: the argument's name, for messages.

    Returns:
        int64 class ids `(n,)`, or float32 multi-hot rows `(n, num_classes)`.

    Example:
    >>> check_labels([2, 0], num_classes=3)
    array([2, 0])
    """
    array = np.asarray(labels)
    if array.dtype.kind not in "biuf" or array.ndim not in (1, 2):  # bool, numbers
        raise ValueError(
            f"`{name}` must be integer class ids (n,) or multi-hot 0/1 rows (n, "
            f"num_classes). Received: dtype={array.dtype}, shape={array.shape}"
        )
    if num_images is not None and len(array) != num_images:
        raise ValueError(
            f"Got {num_images} images but {len(array)} {name}; pass one label "
            "(or one multi-hot row) per image."
        )
    if array.ndim == 2 and is_class_id_column(array.shape):
        array = array[:, 0]
    if array.ndim == 1:
        if array.dtype.kind == "f":  # NaN compares False
            bad = array[~((np.abs(array) < 2.0**63) & (array == np.round(array)))]
        else:
            bad = array[array >= 2**63] if array.dtype == np.uint64 else []
        if len(bad):
            raise ValueError(
                f"`{name}` class ids must be whole numbers that fit in int64 (no NaN "
                f"or infinity), e.g. not {bad[0]}: renumber them."
            )
        ids = array.astype(np.int64)
        low, high = (ids.min(), ids.max()) if ids.size else (0, -1)
        if num_classes is not None and (low < 0 or high >= num_classes):
            raise ValueError(
                f"`{name}` must be class ids in [0, {num_classes}); got {low} to "
                f"{high}. Pass num_classes={high + 1} or renumber them."
            )
        return ids
    if num_classes is not None and array.shape[1] != num_classes:
        raise ValueError(
            f"Multi-hot `{name}` must have num_classes={num_classes} columns. "
            f"Received: shape={array.shape}"
        )
    values = array.astype(np.float32)
    if not np.all((values == 0) | (values == 1)):
        raise ValueError(
            f"Multi-hot `{name}` must contain only 0 and 1; for class ids use "
            f"a 1-D integer array. Received values: {np.unique(values)[:5]}"
        )
    return values


def infer_num_classes(labels):
    """The number of classes of class ids (largest + 1, dense) or multi-hot rows.

    Example:
    >>> infer_num_classes(np.array([0, 3, 1]))
    4
    """
    labels = np.asarray(labels)
    if labels.ndim == 2 and not is_class_id_column(labels.shape):
        return int(labels.shape[1])
    numbers = labels.size and np.issubdtype(labels.dtype, np.number)
    largest = np.max(labels) if numbers else np.nan
    if not np.isfinite(largest):  # no labels, or ones check_labels refuses
        return 1
    num_classes = int(largest) + 1
    present = len(np.unique(labels))
    if largest == int(largest) and num_classes - present > max(present, 10):
        where = int(np.argmax(labels.reshape(-1)))
        raise ValueError(
            f"Label {int(largest)} (label #{where}) implies {num_classes} classes, "
            f"but only {present} distinct class ids are present. Renumber them "
            "densely (`np.unique(labels, return_inverse=True)`), or pass num_classes."
        )
    return num_classes

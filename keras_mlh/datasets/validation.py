"""Checks on user images and labels, run before any training starts.

Both rules live in the TensorFlow-free runtime distribution, which the
serving side shares: images in `keras_mlh_runtime.pixels`, labels (and the
rule that a `(n, 1)` column holds class ids) in `keras_mlh_runtime.labels`.
Re-exported here for the datasets.
"""

from keras_mlh_runtime.labels import (
    check_labels,
    class_ids,
    infer_num_classes,
    is_class_id_column,
    validate_labels,
)
from keras_mlh_runtime.pixels import validate_images

__all__ = [
    "check_labels",
    "class_ids",
    "infer_num_classes",
    "is_class_id_column",
    "validate_images",
    "validate_labels",
]

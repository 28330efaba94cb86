"""Checks on user images and labels, run before any training starts.

Images follow the rule the serving side shares (`keras_mlh_runtime.errors`),
labels (and the rule that a `(n, 1)` column holds class ids) the one of
`keras_mlh.labels`. Re-exported here for the datasets.
"""

from keras_mlh.labels import (
    check_labels,
    class_ids,
    infer_num_classes,
    is_class_id_column,
    validate_labels,
)
from keras_mlh_runtime.errors import validate_images

__all__ = [
    "check_labels",
    "class_ids",
    "infer_num_classes",
    "is_class_id_column",
    "validate_images",
    "validate_labels",
]

"""The checks of user images and labels, for the datasets and the model."""

from keras_mlh.labels import check_labels
from keras_mlh_runtime.errors import validate_images

__all__ = ["check_labels", "validate_images"]

from keras_mlh.datasets.hashing_data import HashingData, from_arrays
from keras_mlh.datasets.sources import from_directory, from_tfds, mnist5k
from keras_mlh.datasets.validation import validate_images, validate_labels

__all__ = [
    "HashingData",
    "from_arrays",
    "from_directory",
    "from_tfds",
    "mnist5k",
    "validate_images",
    "validate_labels",
]

from keras_mlh.datasets.fashion_mnist import fashion_mnist
from keras_mlh.datasets.file_data import (
    FileHashingData,
    from_directory,
    from_files,
    from_list_files,
)
from keras_mlh.datasets.hashing_data import (
    HashingData,
    drop_classes,
    from_arrays,
    hold_out_validation,
    mnist5k,
)
from keras_mlh.datasets.image_pipeline import check_image_file, image_dataset
from keras_mlh.datasets.tfds_data import TfdsHashingData, from_tfds
from keras_mlh.labels import check_labels
from keras_mlh_runtime.errors import validate_images

__all__ = [
    "FileHashingData",
    "HashingData",
    "TfdsHashingData",
    "check_image_file",
    "check_labels",
    "drop_classes",
    "fashion_mnist",
    "from_arrays",
    "from_directory",
    "from_files",
    "from_list_files",
    "from_tfds",
    "hold_out_validation",
    "image_dataset",
    "mnist5k",
    "validate_images",
]

# Before any Keras import: a missing backend package gets a clear error.
from keras_mlh.backends import check_keras_backend

check_keras_backend()

from keras_mlh.models.backbones import APPLICATIONS, SmallConvBackbone  # noqa: E402
from keras_mlh.models.loading import load_model  # noqa: E402
from keras_mlh.models.mlh import MLH  # noqa: E402
from keras_mlh.models.modes import MODES, LossWeights, Mode  # noqa: E402

__all__ = [
    "APPLICATIONS",
    "MLH",
    "MODES",
    "LossWeights",
    "Mode",
    "SmallConvBackbone",
    "load_model",
]

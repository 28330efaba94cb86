from keras_mlh.models.backbones import APPLICATIONS, SmallConvBackbone
from keras_mlh.models.mlh import MLH, MODES

__all__ = ["APPLICATIONS", "MLH", "MODES", "SmallConvBackbone"]

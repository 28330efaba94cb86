from keras_mlh.models.backbones import APPLICATIONS, SmallConvBackbone
from keras_mlh.models.mlh import MLH, MODES, default_augmentation

__all__ = ["APPLICATIONS", "MLH", "MODES", "SmallConvBackbone", "default_augmentation"]

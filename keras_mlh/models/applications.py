"""The `keras.applications` models usable as MLH backbones, by name.

Keras-free, so that the command line offers them without importing Keras;
`keras_mlh.models.backbones.application_backbone` builds them.
"""

# Name -> constructor. Each takes raw pixels in [0, 255]: EfficientNet,
# MobileNetV3 and ConvNeXt rescale inside, ResNet50 gets `CaffePreprocessing`.
APPLICATIONS = {
    "resnet50": "ResNet50",
    "efficientnetb0": "EfficientNetB0",
    "mobilenetv3small": "MobileNetV3Small",
    "mobilenetv3large": "MobileNetV3Large",
    "convnexttiny": "ConvNeXtTiny",
}

"""The `keras.applications` backbones of MLH by name (Keras-free, for the CLI).

Each takes raw pixels in [0, 255]: EfficientNet, MobileNetV3 and ConvNeXt
rescale inside, ResNet50 gets `CaffePreprocessing` (`application_backbone`).
"""

APPLICATIONS = {
    "resnet50": "ResNet50",
    "efficientnetb0": "EfficientNetB0",
    "mobilenetv3small": "MobileNetV3Small",
    "mobilenetv3large": "MobileNetV3Large",
    "convnexttiny": "ConvNeXtTiny",
}

"""The `keras.applications` models usable as MLH backbones, by name.

Names only, without Keras, so the command line can offer them as choices
without importing Keras; `keras_mlh.models.backbones.application_backbone`
builds them.
"""

# Name -> `keras.applications` constructor. They are built with
# `include_top=False, pooling="avg"`; `weights=None` never touches the network.
# Each takes raw pixels in [0, 255]: EfficientNet, MobileNetV3 and ConvNeXt
# rescale inside, and ResNet50 gets its "caffe" preprocessing from
# `CaffePreprocessing` (see `application_backbone`).
APPLICATIONS = {
    "resnet50": "ResNet50",
    "efficientnetb0": "EfficientNetB0",
    "mobilenetv3small": "MobileNetV3Small",
    "mobilenetv3large": "MobileNetV3Large",
    "convnexttiny": "ConvNeXtTiny",
}

"""Export trained MLH models as validated SavedModel and ONNX hash encoders,
in the folder format of `keras_mlh_runtime.contract`."""

from keras_mlh.export.exporter import ExportValidationError, export_encoder
from keras_mlh_runtime.contract import FORMATS, OUTPUT_NAMES

__all__ = ["FORMATS", "OUTPUT_NAMES", "ExportValidationError", "export_encoder"]

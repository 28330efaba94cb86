"""Export trained MLH models as validated SavedModel and ONNX hash encoders.

The folder's format is the runtime's contract, `keras_mlh_runtime.contract`.
"""

from keras_mlh.export.exporter import export_encoder
from keras_mlh.export.validation import ExportValidationError
from keras_mlh_runtime.contract import FORMATS, OUTPUT_NAMES

__all__ = ["FORMATS", "OUTPUT_NAMES", "ExportValidationError", "export_encoder"]

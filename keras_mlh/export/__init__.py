"""Export trained MLH models as SavedModel and ONNX hash encoders."""

from keras_mlh.export.exporter import (
    FORMATS,
    OUTPUT_NAMES,
    ExportValidationError,
    export_encoder,
    load_mlh,
)

__all__ = [
    "FORMATS",
    "OUTPUT_NAMES",
    "ExportValidationError",
    "export_encoder",
    "load_mlh",
]

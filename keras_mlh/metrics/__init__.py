"""Retrieval metrics over Hamming ranking (no TensorFlow; a numba-compiled scan)."""

from keras_mlh.metrics.retrieval import (
    TIE_BREAKING,
    mean_average_precision,
    precision_at_k,
    precision_recall_curve,
    precision_within_radius,
    recall_at_k,
)

__all__ = [
    "TIE_BREAKING",
    "mean_average_precision",
    "precision_at_k",
    "precision_recall_curve",
    "precision_within_radius",
    "recall_at_k",
]

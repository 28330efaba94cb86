from keras_mlh.callbacks.retrieval_metrics import RetrievalMetricsCallback

__all__ = ["RetrievalMetricsCallback"]

"""PNG plots (matplotlib, Agg backend)."""

from keras_mlh.plot.plots import (
    plot_bit_balance,
    plot_history,
    plot_pr_curve,
    plot_precision_at_k,
)

__all__ = ["plot_bit_balance", "plot_history", "plot_pr_curve", "plot_precision_at_k"]

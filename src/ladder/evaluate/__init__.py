"""Evaluation: metrics of predicted probabilities and plots of the results.

Names are imported on first use, so `import ladder.evaluate` does not load scikit-learn or
matplotlib.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ladder.evaluate.metrics import (
        METRICS,
        classification_metrics,
        metric_value,
        validation_metrics,
    )
    from ladder.evaluate.plots import (
        plot_confusion_matrix,
        plot_learning_curves,
        plot_roc,
        plot_tradeoff,
    )

_EXPORTS = {
    "METRICS": "metrics",
    "classification_metrics": "metrics",
    "metric_value": "metrics",
    "validation_metrics": "metrics",
    "plot_confusion_matrix": "plots",
    "plot_learning_curves": "plots",
    "plot_roc": "plots",
    "plot_tradeoff": "plots",
}

__all__ = [
    "METRICS",
    "classification_metrics",
    "metric_value",
    "plot_confusion_matrix",
    "plot_learning_curves",
    "plot_roc",
    "plot_tradeoff",
    "validation_metrics",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ladder.evaluate' has no attribute '{name}'")
    return getattr(importlib.import_module(f"ladder.evaluate.{_EXPORTS[name]}"), name)

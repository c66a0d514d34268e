"""PNG plots of a regressor's test predictions: predicted against actual, and its residuals.

Built and written as in `plots.py`: a `matplotlib.figure.Figure` without pyplot, saved
atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure  # noqa: TID253

from ladder.evaluate.plots import _finish, _save
from ladder.evaluate.regression import _columns, regression_metrics

_MAX_BINS = 60


def plot_predicted_vs_actual(
    y_true: Any, y_pred: Any, path: str | Path, title: str | None = None
) -> None:
    """Predicted against actual values, one point per test row, with the y = x diagonal.

    Both axes share one range, so distance from the diagonal reads the same everywhere; R² and
    RMSE are shown under the title.
    """
    y, pred = _columns({"y_true": y_true, "y_pred": y_pred})
    metrics = regression_metrics(y, pred)
    low, high = _padded_range(np.concatenate([y, pred]))
    fig = Figure(figsize=(6, 6), layout="tight")
    ax = fig.subplots()
    # many points overlap: fainter and smaller markers keep dense regions readable
    alpha = float(np.clip(300 / len(y), 0.15, 0.9))
    size = float(np.clip(3000 / len(y), 4, 30))
    ax.scatter(y, pred, s=size, alpha=alpha, linewidths=0, zorder=3)
    ax.plot([low, high], [low, high], linestyle="--", color="grey", linewidth=1, label="y = x")
    ax.set(xlim=(low, high), ylim=(low, high), aspect="equal")
    r2 = "undefined" if metrics["r2"] is None else f"{metrics['r2']:.3f}"
    # in the title, where no point can hide under it
    summary = f"R² {r2} · RMSE {metrics['rmse']:.4g} · n = {len(y):,}"
    _finish(ax, f"{title or 'Predicted vs actual'}\n{summary}", "actual", "predicted", None)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)


def plot_residual_histogram(
    y_true: Any, y_pred: Any, path: str | Path, title: str | None = None
) -> None:
    """Histogram of residuals (actual - predicted), with a line at 0 and one at their mean."""
    y, pred = _columns({"y_true": y_true, "y_pred": y_pred})
    residual = y - pred
    bins = int(np.clip(round(np.sqrt(len(residual))), 5, _MAX_BINS))
    fig = Figure(figsize=(7, 4.5), layout="tight")
    ax = fig.subplots()
    ax.hist(residual, bins=bins, range=_padded_range(residual), color="C0", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1, label="0 (no error)")
    mean = float(residual.mean())
    ax.axvline(mean, color="C3", linestyle="--", linewidth=1, label=f"mean {mean:.4g}")
    _finish(ax, title or "Residuals", "residual = actual − predicted", "test rows", None)
    _save(fig, path)


def _padded_range(values: np.ndarray) -> tuple[float, float]:
    """(low, high) around the values with 5 % margins; a single value gets a unit-wide range."""
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) if high > low else max(0.5, 0.05 * abs(low))
    return low - pad, high + pad

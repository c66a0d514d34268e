"""PNG plots of a model's training and test results.

Figures are built with `matplotlib.figure.Figure`, which needs no pyplot and no GUI backend, and
each file is written atomically (a temp file in the same folder, then `os.replace`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ladder.io import atomic_write

_MAX_ANNOTATED = 30  # confusion matrices above this many classes show colours only
_MAX_LEGEND = 10  # ROC plots above this many classes label only the macro AUC


def plot_learning_curves(history: Sequence[dict[str, Any]] | Any, path: str | Path) -> None:
    """Loss (train and val) and validation metrics per epoch, side by side.

    Args:
        history: rows with `epoch`, `train_loss`, `val_loss`, `val_<metric>`... (list of dicts
            or a pandas DataFrame, as written to history.csv).
        path: the PNG file to write.
    """
    rows = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    keys = list(dict.fromkeys(key for row in rows for key in row))
    epochs = [row.get("epoch", i + 1) for i, row in enumerate(rows)]

    def series(key: str) -> list[float]:
        return [_number(row.get(key)) for row in rows]

    fig = Figure(figsize=(11, 4.2), layout="tight")
    ax_loss, ax_metric = fig.subplots(1, 2)
    for key in ("train_loss", "val_loss"):
        if key in keys:
            ax_loss.plot(epochs, series(key), marker="o", markersize=3, label=key)
    metric_keys = [k for k in keys if k.startswith("val_") and k != "val_loss"]
    for key in metric_keys:
        ax_metric.plot(epochs, series(key), marker="o", markersize=3, label=key)
    has_loss = any(k in keys for k in ("train_loss", "val_loss"))
    _finish(ax_loss, "Loss", "epoch", "loss", None if has_loss else "no loss recorded")
    metric_note = None if metric_keys else "no validation metrics"
    _finish(ax_metric, "Validation metrics", "epoch", "value", metric_note)
    for ax in (ax_loss, ax_metric):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    _save(fig, path)


def plot_confusion_matrix(cm: Any, labels: Sequence[Any], path: str | Path) -> None:
    """The confusion matrix (rows: true class, columns: predicted class) with counts."""
    cm = np.asarray(cm)
    n = len(labels)
    side = min(max(4.5, 0.45 * n + 2.5), 14)
    fig = Figure(figsize=(side + 1, side), layout="tight")
    ax = fig.subplots()
    image = ax.imshow(cm, cmap="Blues", vmin=0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="count")
    names = [str(label) for label in labels]
    slanted = max((len(name) for name in names), default=0) > 3 or n > 12
    ax.set_xticks(range(n), names, **({"rotation": 45, "ha": "right"} if slanted else {}))
    ax.set_yticks(range(n), names)
    ax.set(title="Confusion matrix", xlabel="Predicted class", ylabel="True class")
    if n <= _MAX_ANNOTATED:
        threshold = cm.max() / 2 if cm.size else 0
        fontsize = 10 if n <= 10 else 7
        for (i, j), count in np.ndenumerate(cm):
            color = "white" if count > threshold else "black"
            ax.text(j, i, f"{count:d}", ha="center", va="center", color=color, fontsize=fontsize)
    _save(fig, path)


def plot_roc(y_true: Any, y_prob: Any, labels: Sequence[Any], path: str | Path) -> None:
    """ROC curves: the positive class for binary tasks, one-vs-rest per class otherwise.

    Classes that are absent from `y_true` (or are all of it) have no ROC curve and are skipped;
    the legend shows the macro AUC over the classes drawn.
    """
    from sklearn.metrics import auc, roc_curve

    y = np.asarray(y_true).astype(np.int64).ravel()
    prob = np.asarray(y_prob, dtype=np.float64)
    n = prob.shape[1]
    drawable = [k for k in range(n) if 0 < np.sum(y == k) < len(y)]
    classes = [k for k in drawable if k == 1] if n == 2 else drawable
    fig = Figure(figsize=(6.5, 6), layout="tight")
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
    areas = []
    for k in classes:
        fpr, tpr, _ = roc_curve(y == k, prob[:, k])
        areas.append(auc(fpr, tpr))
        label = f"{labels[k]} (AUC {areas[-1]:.3f})" if len(classes) <= _MAX_LEGEND else None
        ax.plot(fpr, tpr, linewidth=1.5 if len(classes) <= _MAX_LEGEND else 0.8, label=label)
    if n > 2 and areas:
        ax.plot([], [], " ", label=f"macro AUC {np.mean(areas):.3f} ({len(areas)} classes)")
    title = f"ROC curve (positive class: {labels[1]})" if n == 2 else "ROC curves, one-vs-rest"
    ax.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
    note = None if areas else "ROC undefined: y_true has a single class"
    _finish(ax, title, "False positive rate", "True positive rate", note)
    _save(fig, path)


def _number(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _finish(ax: Axes, title: str, xlabel: str, ylabel: str, note: str | None) -> None:
    """Title, axis labels, grid, legend, and a centred note (e.g. why the panel is empty)."""
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    if note:
        ax.text(0.5, 0.5, note, ha="center", va="center", transform=ax.transAxes)


def _save(fig: Figure, path: str | Path) -> None:
    """Write the figure as a PNG atomically, then release it."""
    try:
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110))
    finally:
        fig.clear()

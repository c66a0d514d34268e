"""PNG plots of a model's training and test results, and of the run's compression trade-off.

Figures are built with `matplotlib.figure.Figure`, which needs no pyplot and no GUI backend, and
each file is written atomically (a temp file in the same folder, then `os.replace`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes  # noqa: TID253
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: TID253
from matplotlib.figure import Figure  # noqa: TID253
from matplotlib.lines import Line2D  # noqa: TID253
from matplotlib.text import Annotation  # noqa: TID253
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: TID253
from matplotlib.transforms import Bbox  # noqa: TID253

from ladder.io import atomic_write

_MAX_ANNOTATED = 30  # confusion matrices above this many classes show colours only
_MAX_LEGEND = 10  # ROC plots above this many classes label only the macro AUC
_DPI = 110
# Where a point's label may go, in points from the point (dx, dy, horizontal alignment), tried
# in this order; the first that overlaps no other label, marker, arrow or axes edge wins.
_LABEL_SPOTS = (
    (7, 0, "left"),
    (-7, 0, "right"),
    (0, 10, "center"),
    (0, -10, "center"),
    (7, 9, "left"),
    (7, -9, "left"),
    (-7, 9, "right"),
    (-7, -9, "right"),
    (0, 19, "center"),
    (0, -19, "center"),
    (12, 17, "left"),
    (12, -17, "left"),
    (-12, 17, "right"),
    (-12, -17, "right"),
)
_MARKER_RADIUS = 4.0  # points: the area around each marker that labels keep clear of


def plot_learning_curves(
    history: Sequence[dict[str, Any]] | Any, path: str | Path, x: str = "epoch"
) -> None:
    """Loss (train and val) and validation metrics per epoch (or per `x`, e.g. step), side by
    side.

    Args:
        history: rows with `epoch`, `train_loss`, `val_loss`, `val_<metric>`... (list of dicts
            or a pandas DataFrame, as written to history.csv).
        path: the PNG file to write.
        x: the column on the horizontal axis.
    """
    rows = history.to_dict("records") if hasattr(history, "to_dict") else list(history)
    keys = list(dict.fromkeys(key for row in rows for key in row))
    epochs = [row.get(x, i + 1) for i, row in enumerate(rows)]

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
    _finish(ax_loss, "Loss", x, "loss", None if has_loss else "no loss recorded")
    metric_note = None if metric_keys else "no validation metrics"
    _finish(ax_metric, "Validation metrics", x, "value", metric_note)
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


@dataclass(frozen=True)
class _Point:
    """One leaderboard row on the trade-off plot."""

    name: str
    original: str | None  # the model this variant was made from; None for an original
    accuracy: float
    latency_ms: float
    size_mb: float
    color: str


def plot_tradeoff(board: Any, path: str | Path) -> None:
    """Accuracy against batch-1 latency and against artifact size (log scales), side by side.

    Originals are filled circles; compressed variants (rows with a `variant_of`) are hollow
    diamonds, each with a thin arrow from its original. Failed rows and rows without accuracy are
    left out, and a panel leaves out points whose latency (or size) is missing or not positive.

    Args:
        board: the leaderboard (a DataFrame with `model`, `accuracy`, `latency_ms`,
            `size_bytes`, and optionally `variant_of` and `status`), or a list of row dicts.
        path: the PNG file to write.
    """
    points = _tradeoff_points(board)
    fig = Figure(figsize=(12, 4.8), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)  # gives a renderer, to measure labels while placing them
    ax_latency, ax_size = fig.subplots(1, 2, sharey=True)
    panels = (
        (ax_latency, "latency_ms", "latency", "latency per row, batch 1 (ms)"),
        (ax_size, "size_mb", "size", "artifact size (MB)"),
    )
    drawn = [_tradeoff_panel(ax, points, *panel) for ax, *panel in panels]
    ax_latency.set_ylabel("test accuracy")
    if any(p.original for p in points):
        fig.legend(handles=_tradeoff_legend(), loc="outside upper center", ncols=2, fontsize=8)
    fig.get_layout_engine().execute(fig)  # settles the axes, so label positions are final
    for (ax, *_), (labels, links) in zip(panels, drawn, strict=True):
        _place_labels(ax, labels, links)
    _save(fig, path)


def _tradeoff_points(board: Any) -> list[_Point]:
    """The rows that can be drawn: finished, with an accuracy; colours shared within a family."""
    rows = board.to_dict("records") if hasattr(board, "to_dict") else list(board)
    rows = [row for row in rows if _finished(row) and math.isfinite(_number(row.get("accuracy")))]
    families: dict[str, str] = {}
    points = []
    for row in rows:
        name, original = str(row["model"]), _text(row.get("variant_of"))
        color = families.setdefault(original or name, f"C{len(families) % 10}")
        size = _number(row.get("size_bytes")) / 1e6
        latency, accuracy = _number(row.get("latency_ms")), _number(row.get("accuracy"))
        points.append(_Point(name, original, accuracy, latency, size, color))
    return points


def _tradeoff_panel(
    ax: Axes, points: list[_Point], key: str, what: str, xlabel: str
) -> tuple[list[tuple[str, float, float]], list[np.ndarray]]:
    """Draw one panel (accuracy vs `key`); return each point's (label, x, y) and each arrow's
    ends (a 2 × 2 array of data coordinates), for `_place_labels`."""
    title = f"Accuracy vs {what}"
    shown = {p.name: p for p in points if _positive(getattr(p, key))}
    links = []
    for p in shown.values():
        x = getattr(p, key)
        if p.original is None:
            ax.scatter(x, p.accuracy, s=42, marker="o", color=p.color, zorder=3)
        else:
            ax.scatter(x, p.accuracy, s=36, marker="D", facecolors="white", zorder=4,
                       edgecolors=p.color, linewidths=1.5)  # fmt: skip
        parent = shown.get(p.original or "")
        if parent is not None:
            start = (getattr(parent, key), parent.accuracy)
            ax.annotate("", (x, p.accuracy), start, arrowprops=_arrow(p.color))
            links.append(np.array([start, (x, p.accuracy)]))
    if shown:
        ax.set_xscale("log")
        ax.margins(x=0.12, y=0.12)  # room for labels at the edges
        _plain_log_ticks(ax)
    note = None if shown else f"no model has both accuracy and {what}"
    _finish(ax, title, xlabel, "", note)
    labels = [(_label(p, shown), getattr(p, key), p.accuracy) for p in shown.values()]
    return labels, links


def _label(point: _Point, shown: dict[str, _Point]) -> str:
    """The model name; a variant drawn beside its original shows only what it adds (`+int8`)."""
    original = point.original
    if original and original in shown and point.name.startswith(original):
        return point.name[len(original) :] or point.name
    return point.name


def _arrow(color: str) -> dict[str, Any]:
    """A thin arrow from an original to its variant, stopping short of both markers."""
    style = {"arrowstyle": "-|>", "mutation_scale": 9, "lw": 0.8, "alpha": 0.7}
    return {**style, "color": color, "shrinkA": 5, "shrinkB": 6}


def _tradeoff_legend() -> list[Line2D]:
    marker = {"linestyle": "", "color": "grey", "markersize": 7}
    return [
        Line2D([], [], marker="o", label="original model", **marker),
        Line2D([], [], marker="D", markerfacecolor="white", markeredgewidth=1.5,
               label="compressed variant (arrow from its original)", **marker),
    ]  # fmt: skip


def _plain_log_ticks(ax: Axes) -> None:
    """Log-axis tick labels as plain numbers (0.1, 1, 10); below ~1.5 decades, 2, 3, 5 too."""
    low, high = ax.get_xlim()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    if high / low < 10**1.5:  # few or no decades in view: label some minor ticks too
        ax.xaxis.set_minor_formatter(FuncFormatter(_minor_tick_label))
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def _minor_tick_label(value: float, _: Any) -> str:
    leading = round(value / 10 ** math.floor(math.log10(value) + 1e-9))
    return f"{value:g}" if leading in (2, 3, 5) else ""


def _place_labels(
    ax: Axes, labels: list[tuple[str, float, float]], links: list[np.ndarray]
) -> None:
    """Label each point at the first spot around it that overlaps no label, marker, arrow or
    edge (or, failing that, the spot that overlaps least)."""
    renderer = ax.figure.canvas.get_renderer()
    radius = _MARKER_RADIUS * ax.figure.dpi / 72
    area = ax.get_window_extent(renderer)
    centres = [ax.transData.transform([(x, y) for _, x, y in labels]).reshape(-1, 2)]
    for ends in links:  # points every ~radius pixels along each arrow keep labels off it
        start, end = ax.transData.transform(ends)
        steps = int(np.hypot(*(end - start)) // radius) + 1
        centres.append(start + np.linspace(0, 1, steps + 1)[:, None] * (end - start))
    marks = [
        Bbox.from_bounds(px - radius, py - radius, 2 * radius, 2 * radius)
        for px, py in np.concatenate(centres)
    ]
    placed: list[Bbox] = []
    for text, x, y in labels:
        best: tuple[float, Annotation] | None = None
        for dx, dy, ha in _LABEL_SPOTS:
            note = ax.annotate(text, (x, y), (dx, dy), textcoords="offset points", ha=ha,
                               va="center", fontsize=8)  # fmt: skip
            note.set_in_layout(False)  # labels must not move the axes they were measured in
            box = note.get_window_extent(renderer)
            # a label over another label is worse than one over a marker or an arrow
            cost = sum(_overlap(box, other) for other in marks) + 2 * _outside(box, area)
            cost += 4 * sum(_overlap(box, other) for other in placed)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note)
            else:
                note.remove()
            if cost == 0:
                break
        if best is not None:
            placed.append(best[1].get_window_extent(renderer))


def _overlap(a: Bbox, b: Bbox) -> float:
    width = min(a.x1, b.x1) - max(a.x0, b.x0)
    height = min(a.y1, b.y1) - max(a.y0, b.y0)
    return max(width, 0.0) * max(height, 0.0)


def _outside(box: Bbox, area: Bbox) -> float:
    return box.width * box.height - _overlap(box, area)


def _finished(row: dict[str, Any]) -> bool:
    """Not a failed row: status is missing, "ok", "cached"... but not "failed: ..."."""
    return not (_text(row.get("status")) or "").lower().startswith("failed")


def _text(value: Any) -> str | None:
    """A non-empty string, or None for NaN, None and blanks (how CSV cells come back)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value).strip() or None


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


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
        atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=_DPI))
    finally:
        fig.clear()

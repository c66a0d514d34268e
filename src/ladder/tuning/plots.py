"""PNG plots of a tuning study: the optimization history and the parameter importances.

Drawn like `ladder.evaluate.plots` (a `matplotlib.figure.Figure`, no pyplot, written atomically
through its `_save`), from the files a study leaves behind: trials.csv and importance.json.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd  # noqa: TID253
from matplotlib.figure import Figure  # noqa: TID253
from matplotlib.ticker import MaxNLocator  # noqa: TID253

from ladder.evaluate.plots import _finish, _save

DIRECTIONS = ("maximize", "minimize")


def best_so_far(values: Sequence[float], direction: str) -> list[float]:
    """The best value among `values[: i + 1]` for each i (NaN, i.e. no value, is skipped; NaN
    until the first value)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    better = max if direction == "maximize" else min
    best, out = math.nan, []
    for value in values:
        value = float(value)
        if not math.isnan(value):
            best = value if math.isnan(best) else better(best, value)
        out.append(best)
    return out


def plot_history(trials: pd.DataFrame, direction: str, metric: str, path: Path) -> Path:
    """Each complete trial's value by trial number, the best value so far, and where trials
    were pruned (grey x) or failed (red tick) along the bottom of the axes.

    Args:
        trials: trials.csv as a DataFrame (`number`, `state`, `value`; value empty unless the
            state is COMPLETE).
        direction: "maximize" or "minimize", for the best-so-far line.
        metric: the validation metric the study optimises (the y label).
        path: the PNG file to write.
    """
    frame = trials.reindex(columns=["number", "state", "value"]).sort_values("number")
    number = pd.to_numeric(frame["number"], errors="coerce").to_numpy(dtype=float)
    value = pd.to_numeric(frame["value"], errors="coerce").to_numpy(dtype=float)
    states = frame["state"].astype(str).str.upper().to_numpy()
    complete = (states == "COMPLETE") & np.isfinite(value)
    x, y = number[complete], value[complete]
    best = best_so_far(y, direction)  # checks `direction` too

    fig = Figure(figsize=(7.5, 4.4), layout="constrained")
    ax = fig.subplots()
    if len(x):
        ax.scatter(x, y, s=22, color="tab:blue", zorder=3, label=f"complete ({len(x)})")
        ax.plot(
            x,
            best,
            drawstyle="steps-post",
            color="tab:red",
            linewidth=1.5,
            zorder=2,
            label="best so far",
        )
    on_axis = ax.get_xaxis_transform()  # x in data, y in axes coordinates: the bottom edge
    for state, marker, color, label in (
        ("PRUNED", "x", "grey", "pruned"),
        ("FAIL", "|", "tab:red", "failed"),
    ):
        at = number[states == state]
        if len(at):
            ax.scatter(
                at,
                np.full(len(at), 0.03),
                transform=on_axis,
                marker=marker,
                s=40,
                color=color,
                zorder=4,
                clip_on=False,
                label=f"{label} ({len(at)})",
            )
    # markers drawn in axes coordinates do not widen the x limits: set them from every trial
    numbers = number[np.isfinite(number)]
    if len(numbers):
        ax.set_xlim(numbers.min() - 0.7, numbers.max() + 0.7)
    ax.margins(y=0.12)  # room above the pruned and failed marks
    if not len(x):
        ax.set_yticks([])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    empty = "no trials" if frame.empty else None if len(x) else "no complete trials"
    title = f"Optimization history ({'higher' if direction == 'maximize' else 'lower'} is better)"
    _finish(ax, title, "trial", f"validation {metric}", empty)
    _save(fig, path)
    return Path(path)


def plot_importance(importances: dict[str, float], path: Path) -> Path:
    """The parameters' importances as horizontal bars, the largest on top; an empty mapping
    draws a figure that says importances need 2+ complete trials."""
    ranked = sorted(importances.items(), key=lambda item: float(item[1]), reverse=True)
    fig = Figure(figsize=(6.4, max(2.4, 0.4 * len(ranked) + 1.4)), layout="constrained")
    ax = fig.subplots()
    if ranked:
        names = [str(name) for name, _ in ranked]
        values = np.array([float(v) for _, v in ranked])
        positions = np.arange(len(ranked))[::-1]  # the first (largest) at the top
        ax.barh(positions, values, color="tab:blue", alpha=0.85)
        for pos, v in zip(positions, values, strict=True):
            ax.annotate(
                f"{v:.3f}",
                (v, pos),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
            )
        ax.set_yticks(positions, names)
        top = float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
        ax.set_xlim(0, max(top, 1e-9) * 1.18)  # room for the value labels
    else:
        ax.set(xticks=[], yticks=[])
    note = None if ranked else "needs 2+ complete trials"
    _finish(ax, "Parameter importance", "importance" if ranked else "", "", note)
    _save(fig, path)
    return Path(path)

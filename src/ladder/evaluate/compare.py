"""Model comparison: the pieces of an honest leaderboard, as pure functions.

A leaderboard has one row per model (columns in LEADERBOARD_COLUMNS). Its numbers come from
here: a bootstrap confidence interval on accuracy, an exact McNemar test against the best
model (is the difference real, or noise of a small test set?), the Pareto front of accuracy
vs latency, timed predictions and a parameter count. `build_leaderboard` orders the rows and
`leaderboard_markdown` renders them.
"""

from __future__ import annotations

import difflib
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.errors import LadderError

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "model",
    "type",
    "variant_of",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "accuracy_delta",
    "f1_macro",
    "roc_auc",
    "log_loss",
    "params",
    "size_bytes",
    "train_seconds",
    "latency_ms",
    "throughput_per_s",
    "mcnemar_p",
    "pareto",
    "status",
)

_SORTABLE = ("accuracy", "f1_macro", "roc_auc", "log_loss")  # primary metrics with a column
_LOWER_IS_BETTER = frozenset({"log_loss"})
_METRIC_COLUMNS = frozenset(
    {"accuracy", "accuracy_ci_low", "accuracy_ci_high", "f1_macro", "roc_auc", "log_loss"}
)
_INT_COLUMNS = frozenset({"params", "size_bytes"})
_REGRESSION_COLUMNS = frozenset(
    {"rmse", "rmse_ci_low", "rmse_ci_high", "mae", "r2", "mape", "coverage", "interval_width"}
)
_TEXT_COLUMNS = frozenset({"model", "type", "variant_of", "status"})
_MAX_BOOTSTRAP_CELLS = 10_000_000  # resample indices drawn per chunk, to bound memory


def _labels(y: Any) -> np.ndarray:
    return np.asarray(y).ravel()


def bootstrap_ci(
    y_true: Any, y_pred: Any, n_resamples: int, seed: int, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of accuracy, resampling test rows with replacement.

    Args:
        n_resamples: number of resampled test sets; 0 gives (nan, nan).
        seed: seeds numpy's generator, so the interval is reproducible.
        level: coverage of the interval, in (0, 1).
    """
    y, pred = _labels(y_true), _labels(y_pred)
    if len(y) != len(pred) or len(y) == 0:
        raise ValueError(f"expected equal, non-empty y_true and y_pred, got {len(y)}, {len(pred)}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    if n_resamples == 0:
        return float("nan"), float("nan")
    correct = (y == pred).astype(np.float64)  # (n,) 1 where the prediction is right
    rng = np.random.default_rng(seed)
    n = len(correct)
    chunk = max(1, _MAX_BOOTSTRAP_CELLS // n)
    scores = np.concatenate(
        [
            correct[rng.integers(0, n, size=(min(chunk, n_resamples - start), n))].mean(axis=1)
            for start in range(0, n_resamples, chunk)
        ]
    )  # (n_resamples,) accuracy of each resampled test set
    alpha = (1 - level) / 2
    low, high = np.quantile(scores, [alpha, 1 - alpha])
    return float(low), float(high)


def paired_t_p(differences: Any) -> float:
    """Two-sided p-value of a paired t-test: is the mean of the per-item `differences` between
    two models (n - 1 degrees of freedom) non-zero? All-zero differences give 1.0, equal
    non-zero ones 0.0, fewer than 2 items nan."""
    from scipy.stats import t  # scipy comes with scikit-learn; loaded only when needed

    d = np.asarray(differences, dtype=np.float64).ravel()
    n = d.size
    if n < 2:
        return math.nan
    mean, sd = float(np.mean(d)), float(np.std(d, ddof=1))
    if sd == 0:
        return 1.0 if mean == 0 else 0.0
    return float(min(1.0, 2 * t.sf(abs(mean / (sd / math.sqrt(n))), n - 1)))


def mcnemar_p(y_true: Any, pred_a: Any, pred_b: Any) -> float:
    """Exact two-sided McNemar p-value: do models a and b differ in accuracy?

    Only discordant rows count: b rows where only `a` is right, c where only `b` is. Under the
    null each is a fair coin, so p = min(1, 2 * P[Binom(b + c, 0.5) <= min(b, c)]).
    """
    from scipy.stats import binom  # scipy comes with scikit-learn; loaded only when needed

    y, a, b_pred = _labels(y_true), _labels(pred_a), _labels(pred_b)
    if not len(y) == len(a) == len(b_pred):
        raise ValueError(f"expected equal lengths, got {len(y)}, {len(a)}, {len(b_pred)}")
    a_right, b_right = a == y, b_pred == y
    b = int(np.sum(a_right & ~b_right))
    c = int(np.sum(~a_right & b_right))
    if b + c == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(min(b, c), b + c, 0.5)))


def pareto_front(accuracy: list[float], latency_ms: list[float]) -> list[bool]:
    """For each model, whether no other model is at least as accurate and at least as fast.

    A model is dominated by one with accuracy >= and latency <=, one of them strictly.
    NaN latency counts as +inf (slowest); NaN accuracy as -inf.
    """
    if len(accuracy) != len(latency_ms):
        raise ValueError(f"expected equal lengths, got {len(accuracy)} and {len(latency_ms)}")
    acc = np.nan_to_num(np.asarray(accuracy, dtype=np.float64), nan=-np.inf)
    lat = np.nan_to_num(np.asarray(latency_ms, dtype=np.float64), nan=np.inf)
    # dominated[i, j]: model j dominates model i
    no_worse = (acc[None, :] >= acc[:, None]) & (lat[None, :] <= lat[:, None])
    better = (acc[None, :] > acc[:, None]) | (lat[None, :] < lat[:, None])
    dominated = no_worse & better
    return [bool(not row.any()) for row in dominated]


def time_predictions(
    predict: Callable[[Any], Any], one: Any, batch: Any, repeats: int = 20
) -> tuple[float, float]:
    """(median ms to predict `one` sample, warm; samples per second on `batch`).

    Both are timed after a warm-up call. Latency is the median of `repeats` calls; throughput
    uses the median of a few (`max(3, repeats // 5)`) calls on the whole batch.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    n = len(batch)
    if n == 0:
        raise ValueError("batch is empty")
    predict(one)  # warm-up: lazy imports, caches, allocator
    latency = statistics.median(_elapsed(predict, one) for _ in range(repeats))
    predict(batch)
    batch_seconds = statistics.median(_elapsed(predict, batch) for _ in range(max(3, repeats // 5)))
    return latency * 1000.0, n / max(batch_seconds, 1e-9)


def _elapsed(predict: Callable[[Any], Any], x: Any) -> float:
    start = time.perf_counter()
    predict(x)
    return time.perf_counter() - start


def count_params(obj: Any) -> int | None:
    """Number of learned values of a model, or None when there is nothing to count.

    - torch `nn.Module`: total parameter `numel` (buffers excluded).
    - scikit-learn style estimators: the sum over public fitted attributes (names ending in
      `_`) of float array sizes (`coef_`, `intercept_`, `mean_`...; integer metadata such as
      `classes_` or `n_iter_` is left out), node counts of fitted trees (`tree_`), and, within
      lists of sub-estimators (`estimators_`, pipeline `steps`, calibrated classifiers) or
      `module_`, their counts; HistGradientBoosting counts the nodes of its trees.
    """
    count = _count(obj)
    return None if count is None else int(count)


def _count(value: Any) -> int | None:
    if hasattr(value, "parameters") and _is_torch_module(value):
        return sum(p.numel() for p in value.parameters())
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return _sum_counts(value.ravel().tolist())
        return int(value.size) if value.dtype.kind in "fc" else None
    if isinstance(value, list | tuple):
        return _sum_counts(value)
    node_count = getattr(value, "node_count", None)
    if isinstance(node_count, int | np.integer) and not isinstance(value, type):
        return int(node_count)  # a fitted sklearn Tree
    nodes = getattr(value, "nodes", None)
    if isinstance(nodes, np.ndarray) and nodes.dtype.names:  # a HistGradientBoosting tree
        return len(nodes)
    if hasattr(value, "calibrators") and hasattr(value, "estimator"):  # a calibrated pair
        return _sum_counts([value.estimator, *value.calibrators])
    if not hasattr(value, "get_params") or not hasattr(value, "__dict__"):
        return None
    counts = [
        _count(v)
        for name, v in vars(value).items()
        if name.endswith("_") and not name.startswith("_")
    ]
    counts.append(_count(getattr(value, "_predictors", None)))  # HistGradientBoosting's trees
    steps = getattr(value, "steps", None)
    if isinstance(steps, list):  # a Pipeline: its fitted steps hold the learned values
        counts.append(_sum_counts([step for _, step in steps]))
    return _sum_counts(counts, counted=True)


def _sum_counts(items: list, counted: bool = False) -> int | None:
    counts = items if counted else [_count(item) for item in items]
    found = [c for c in counts if c is not None]
    return sum(found) if found else None


def _is_torch_module(obj: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency of ladder
        return False
    return isinstance(obj, torch.nn.Module)


def build_leaderboard(
    rows: list[dict],
    primary: str = "accuracy",
    columns: tuple[str, ...] = LEADERBOARD_COLUMNS,
    lower_is_better: frozenset[str] = frozenset({"log_loss"}),
) -> pd.DataFrame:
    """A DataFrame with exactly `columns` (a task's leaderboard contract), best model first.

    Missing values are NaN (a row without `status` counts as "ok"); keys outside the contract
    are dropped. Rows with a result (status "ok", "cached", ...) are sorted by `primary`,
    descending (ascending for the `lower_is_better` metrics), NaN last; rows without one
    ("failed: <error>", "not run") come after all others, in the same order.
    """
    sortable = _SORTABLE if columns == LEADERBOARD_COLUMNS else _sortable(columns)
    if primary not in sortable:
        close = difflib.get_close_matches(primary, sortable, n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LadderError(
            f"cannot rank the leaderboard by '{primary}'{hint} (choose from {', '.join(sortable)})"
        )
    df = pd.DataFrame(
        [{col: row.get(col, math.nan) for col in columns} for row in rows],
        columns=list(columns),
    )
    df["status"] = df["status"].where(df["status"].notna(), "ok")
    failed = df["status"].str.startswith("failed") | (df["status"] == "not run")
    key = pd.to_numeric(df[primary], errors="coerce")
    if primary not in lower_is_better:
        key = -key
    order = pd.DataFrame({"failed": failed, "key": key}).sort_values(
        ["failed", "key"], kind="mergesort", na_position="last"
    )
    return df.loc[order.index].reset_index(drop=True)


def _sortable(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The metric columns of a leaderboard contract that a leaderboard can be ranked by."""
    costs = _INT_COLUMNS | _TEXT_COLUMNS | {"train_seconds", "latency_ms", "throughput_per_s"}
    return tuple(
        c
        for c in columns
        if c not in costs
        and not c.endswith(("_ci_low", "_ci_high", "_delta", "_p"))
        and c not in ("pareto", "coverage", "interval_width")
    )


def leaderboard_markdown(df: pd.DataFrame) -> str:
    """The leaderboard as a GitHub markdown table, one line per model."""
    columns = list(df.columns)
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" if c in _TEXT_COLUMNS else "---:" for c in columns)
    lines = [header, rule + "|"]
    for _, row in df.iterrows():
        cells = [_format_cell(col, row[col]) for col in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _format_cell(column: str, value: Any) -> str:
    if value is None or (isinstance(value, float | np.floating) and math.isnan(value)):
        return "—"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | float | np.integer | np.floating):
        return _format_number(column, float(value))
    return str(value).replace("|", "\\|").replace("\n", " ")


def _format_number(column: str, value: float) -> str:
    if column == "accuracy_delta":
        return f"{value:+.4f}"
    if column.endswith("_delta"):
        return f"{value:+.4g}"
    if column in _METRIC_COLUMNS:
        return f"{value:.4f}"
    if column in _REGRESSION_COLUMNS:
        return f"{value:.4g}"
    if column in ("mcnemar_p", "ttest_p"):
        return f"{value:.4f}" if value >= 1e-4 else f"{value:.1e}"
    if column == "latency_ms":
        return f"{float(f'{value:.3g}'):,g}"  # 3 significant digits: 0.0123, 4.56, 1,230
    if column in _INT_COLUMNS or column == "throughput_per_s":
        return f"{round(value):,}"
    if column == "train_seconds":
        return f"{value:,.2f}"
    return f"{value:g}"

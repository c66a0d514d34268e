"""Regression evaluation as pure functions: arrays in, numbers out.

Point metrics (RMSE, MAE, R², MAPE), a percentile bootstrap interval of any of them, the
paired test the leaderboard uses to compare two regressors (in place of McNemar, which needs
right/wrong rows), and split-conformal prediction intervals with their empirical coverage.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from ladder.evaluate.compare import _MAX_BOOTSTRAP_CELLS, paired_t_p

REGRESSION_METRICS: tuple[str, ...] = ("rmse", "mae", "r2", "mape")
LOWER_IS_BETTER: frozenset[str] = frozenset({"rmse", "mae", "mape"})  # r2: higher is better


def _columns(arrays: dict[str, Any], allow_inf: tuple[str, ...] = ()) -> list[np.ndarray]:
    """Each array as a float64 column of shape (n,), after checking the set is usable.

    Args:
        arrays: name -> values of shape (n,) or (n, 1); names appear in the error messages.
        allow_inf: names whose values may be ±inf (interval bounds); NaN is never allowed.
    """
    columns = {}
    for name, values in arrays.items():
        column = np.asarray(values, dtype=np.float64)
        if column.ndim == 2 and column.shape[1] == 1:
            column = column[:, 0]
        if column.ndim != 1:
            raise ValueError(f"{name} must have shape (n,) or (n, 1), got {column.shape}")
        columns[name] = column
    (first, reference), *others = columns.items()
    for name, column in others:
        if len(column) != len(reference):
            raise ValueError(
                f"{name} has {len(column)} rows but {first} has {len(reference)}; "
                "expected one value per test row"
            )
    if len(reference) == 0:
        raise ValueError(f"{', '.join(columns)} are empty; expected at least one row")
    for name, column in columns.items():
        bad = np.isnan(column) if name in allow_inf else ~np.isfinite(column)
        if bad.any():
            kind = "NaN" if name in allow_inf else "non-finite (NaN or inf)"
            raise ValueError(
                f"{name} has {int(bad.sum())} {kind} values, the first at row {int(np.argmax(bad))}"
            )
    return list(columns.values())


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """RMSE, MAE, R² and MAPE of the predictions, as Python floats.

    MAPE is mean(|y - p| / |y|), a fraction (0.1 is 10 %). A metric that is undefined on these
    targets is None and the dict gets a `notes` list saying why: MAPE when any target is 0,
    R² when all targets are equal.
    """
    y, pred = _columns({"y_true": y_true, "y_pred": y_pred})
    residual = y - pred
    n_zero = int(np.sum(y == 0))
    constant = bool(np.ptp(y) == 0)  # exact, unlike a sum of squares around a rounded mean
    notes = []
    if n_zero:
        notes.append(f"mape skipped: {n_zero} test targets are 0")
    if constant:
        notes.append(f"r2 skipped: all {len(y)} test targets are equal, so there is no variance")
    result: dict[str, Any] = {
        "rmse": float(np.sqrt(np.mean(residual**2))),
        "mae": float(np.mean(np.abs(residual))),
        "r2": None if constant else float(1 - np.sum(residual**2) / np.sum((y - y.mean()) ** 2)),
        "mape": None if n_zero else float(np.mean(np.abs(residual) / np.abs(y))),
    }
    if notes:
        result["notes"] = notes
    return result


def _bootstrap_scores(
    n: int, n_resamples: int, seed: int, score: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """`score` of each of `n_resamples` resampled test sets, drawn in memory-bounded chunks.

    Args:
        score: maps row indices of shape (resamples, n) to one value per resample.
    """
    rng = np.random.default_rng(seed)
    chunk = max(1, _MAX_BOOTSTRAP_CELLS // n)
    return np.concatenate(
        [
            score(rng.integers(0, n, size=(min(chunk, n_resamples - start), n)))
            for start in range(0, n_resamples, chunk)
        ]
    )  # (n_resamples,)


def _resampled_metric(
    metric: str, y: np.ndarray, pred: np.ndarray
) -> Callable[[np.ndarray], np.ndarray] | None:
    """The metric as a function of resample indices (resamples, n); None where undefined."""
    squared = (y - pred) ** 2
    if metric == "rmse":
        return lambda idx: np.sqrt(squared[idx].mean(axis=1))
    if metric == "mae":
        absolute = np.abs(y - pred)
        return lambda idx: absolute[idx].mean(axis=1)
    if metric == "mape":
        if np.any(y == 0):
            return None
        relative = np.abs(y - pred) / np.abs(y)
        return lambda idx: relative[idx].mean(axis=1)
    if np.ptp(y) == 0:
        return None

    def r2(idx: np.ndarray) -> np.ndarray:
        targets = y[idx]  # (resamples, n)
        total = ((targets - targets.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
        # a resample that drew only equal targets has no R²; it is left out of the interval
        total[np.ptp(targets, axis=1) == 0] = np.nan
        return 1 - squared[idx].sum(axis=1) / total

    return r2


def regression_bootstrap_ci(
    y_true: Any,
    y_pred: Any,
    metric: str = "rmse",
    n_resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a regression metric, resampling test rows with replacement.

    Args:
        metric: one of REGRESSION_METRICS. Where the metric is undefined on these targets
            (MAPE with a zero target, R² with constant targets) the interval is (nan, nan).
        n_resamples: number of resampled test sets; 0 gives (nan, nan).
        seed: seeds numpy's generator, so the interval is reproducible.
        level: coverage of the interval, in (0, 1).
    """
    if metric not in REGRESSION_METRICS:
        close = difflib.get_close_matches(metric, REGRESSION_METRICS, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ValueError(
            f"unknown regression metric '{metric}'{hint} "
            f"(choose from {', '.join(REGRESSION_METRICS)})"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples < 0:
        raise ValueError(f"n_resamples must be >= 0, got {n_resamples}")
    y, pred = _columns({"y_true": y_true, "y_pred": y_pred})
    score = _resampled_metric(metric, y, pred)
    if n_resamples == 0 or score is None:
        return math.nan, math.nan
    scores = _bootstrap_scores(len(y), n_resamples, seed, score)
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return math.nan, math.nan
    alpha = (1 - level) / 2
    low, high = np.quantile(scores, [alpha, 1 - alpha])
    return float(low), float(high)


def squared_error_p(y_true: Any, pred_a: Any, pred_b: Any) -> float:
    """Two-sided p-value: do regressors a and b differ in mean squared error?

    The leaderboard's paired test for regression, in place of McNemar: a paired t-test on the
    per-row differences of squared errors, d = (y - a)² - (y - b)², with n - 1 degrees of freedom
    (the Diebold–Mariano test with squared loss, for independent test rows). Identical errors
    give 1.0; equal non-zero differences on every row give 0.0; fewer than 2 rows give nan.
    """
    y, a, b = _columns({"y_true": y_true, "pred_a": pred_a, "pred_b": pred_b})
    return paired_t_p((y - a) ** 2 - (y - b) ** 2)  # > 0 where a is the worse of the two


def conformal_radius(y_val: Any, pred_val: Any, level: float) -> float:
    """Half-width of split-conformal intervals, prediction ± radius, from validation residuals.

    The ceil((n + 1) · level)-th smallest absolute residual of the n validation rows, which
    covers a fresh row with probability at least `level` when rows are exchangeable; +inf when
    (n + 1) · level > n, as too few validation rows bound no finite interval.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    y, pred = _columns({"y_val": y_val, "pred_val": pred_val})
    n = len(y)
    # the tolerance keeps float products like 100 * 0.55 = 55.00000000000001 from adding a rank
    rank = math.ceil((n + 1) * level - 1e-9)
    if rank > n:
        return math.inf
    residuals = np.abs(y - pred)
    return float(np.partition(residuals, rank - 1)[rank - 1])


def interval_coverage(y_true: Any, lower: Any, upper: Any) -> tuple[float, float]:
    """(fraction of rows with lower <= y <= upper, mean width upper - lower).

    Bounds may be ±inf (a conformal radius from too few rows); the width is then inf.
    """
    y, low, high = _columns(
        {"y_true": y_true, "lower": lower, "upper": upper}, allow_inf=("lower", "upper")
    )
    crossed = low > high
    if crossed.any():
        raise ValueError(
            f"lower exceeds upper in {int(crossed.sum())} rows, "
            f"the first at row {int(np.argmax(crossed))}"
        )
    covered = (low <= y) & (y <= high)
    return float(np.mean(covered)), float(np.mean(high - low))

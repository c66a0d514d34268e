"""Regression: one number per row, MSE/MAE/Huber loss, RMSE with a bootstrap interval, a paired
t-test on squared errors, split-conformal prediction intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import TrainConfig
from ladder.data.target import TargetScaling
from ladder.evaluate.plots import plot_learning_curves
from ladder.evaluate.regression import (
    REGRESSION_METRICS,
    interval_coverage,
    regression_bootstrap_ci,
    regression_metrics,
    squared_error_p,
)
from ladder.evaluate.regression_plots import plot_predicted_vs_actual, plot_residual_histogram
from ladder.io import atomic_write_text
from ladder.train.objective import Objective, regression_objective

LEADERBOARD_COLUMNS: tuple[str, ...] = (
    "model",
    "type",
    "variant_of",
    "rmse",
    "rmse_ci_low",
    "rmse_ci_high",
    "rmse_delta",
    "mae",
    "r2",
    "mape",
    "coverage",
    "interval_width",
    "params",
    "size_bytes",
    "train_seconds",
    "latency_ms",
    "throughput_per_s",
    "ttest_p",
    "pareto",
    "status",
)


@dataclass(frozen=True)
class RegressionTask:
    """A numeric target."""

    name: str = "regression"
    metric_names: tuple[str, ...] = REGRESSION_METRICS
    default_metrics: tuple[str, ...] = REGRESSION_METRICS
    default_primary: str = "rmse"
    lower_is_better: frozenset[str] = frozenset({"rmse", "mae", "mape"})
    headline: tuple[str, ...] = REGRESSION_METRICS
    leaderboard_columns: tuple[str, ...] = LEADERBOARD_COLUMNS
    paired_column: str = "ttest_p"
    delta_column: str = "rmse_delta"
    delta_metric: str = "rmse"
    prediction_columns: tuple[str, str] = ("y_true", "y_pred")

    def n_outputs(self, labels: list[Any]) -> int:
        """One output: the (standardised) target."""
        return 1

    def objective(self, train: TrainConfig) -> Objective:
        """train.loss (mse by default, mae or huber) on the one output."""
        return regression_objective(train)

    def predict(self, fitted: Any, features: np.ndarray) -> np.ndarray:
        """Predicted values (n,), in the target's units."""
        return fitted.predict_values(features)

    def metrics(self, y_true: np.ndarray, outputs: np.ndarray, labels: list[Any]) -> dict[str, Any]:
        """RMSE, MAE, R² and MAPE of predicted values."""
        return regression_metrics(y_true, outputs)

    def evaluate(
        self,
        y_true: np.ndarray,
        outputs: np.ndarray,
        labels: list[Any],
        model_dir: Path,
        history: list[dict[str, Any]] | None = None,
        radius: float | None = None,
    ) -> dict[str, Any]:
        """RMSE, MAE, R², MAPE (and interval coverage and width with a conformal `radius`);
        learning-curve, predicted-vs-actual and residual plots; test_predictions.csv."""
        y_true = np.asarray(y_true, dtype=np.float64)
        pred = np.asarray(outputs, dtype=np.float64).reshape(-1)
        columns = {"y_true": y_true, "y_pred": pred}
        metrics = regression_metrics(y_true, pred)
        if radius is not None:
            columns |= {"lower": pred - radius, "upper": pred + radius}
            coverage, width = interval_coverage(y_true, columns["lower"], columns["upper"])
            metrics |= {"coverage": coverage, "interval_width": width, "interval_radius": radius}
        frame = pd.DataFrame(columns)
        atomic_write_text(
            model_dir / "test_predictions.csv", frame.to_csv(index=False, float_format="%.10g")
        )
        plots = model_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        if history:
            plot_learning_curves(history, plots / "learning_curve.png")
        plot_predicted_vs_actual(y_true, pred, plots / "predicted_vs_actual.png")
        plot_residual_histogram(y_true, pred, plots / "residuals.png")
        return metrics

    def leaderboard_figures(
        self, metrics: dict[str, Any], predictions: pd.DataFrame, bootstrap: int, seed: int
    ) -> dict[str, Any]:
        """RMSE with its bootstrap interval, MAE, R², MAPE, interval coverage and width."""
        low, high = regression_bootstrap_ci(
            predictions["y_true"].to_numpy(),
            predictions["y_pred"].to_numpy(),
            "rmse",
            bootstrap,
            seed,
        )
        keys = ("rmse", "mae", "r2", "mape", "coverage", "interval_width")
        return {**{k: metrics.get(k) for k in keys}, "rmse_ci_low": low, "rmse_ci_high": high}

    def paired_p(self, truth: np.ndarray, best: np.ndarray, other: np.ndarray) -> float:
        """Paired t-test on the per-row squared errors (Diebold–Mariano with squared loss)."""
        p = squared_error_p(truth, best, other)
        return 1.0 if math.isnan(p) else p


REGRESSION = RegressionTask()

__all__ = ["LEADERBOARD_COLUMNS", "REGRESSION", "RegressionTask", "TargetScaling"]

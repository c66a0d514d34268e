"""Classification: class probabilities, cross-entropy, accuracy and McNemar's test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import METRIC_NAMES, TrainConfig
from ladder.evaluate.compare import LEADERBOARD_COLUMNS, bootstrap_ci, mcnemar_p
from ladder.evaluate.metrics import classification_metrics
from ladder.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_roc
from ladder.io import atomic_write_text
from ladder.train.objective import Classification, Objective


@dataclass(frozen=True)
class ClassificationTask:
    """A target of classes (text, booleans or a few integers)."""

    name: str = "classification"
    metric_names: tuple[str, ...] = METRIC_NAMES
    default_metrics: tuple[str, ...] = ("accuracy", "f1_macro", "roc_auc")
    default_primary: str = "accuracy"
    lower_is_better: frozenset[str] = frozenset({"log_loss"})
    headline: tuple[str, ...] = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
    leaderboard_columns: tuple[str, ...] = LEADERBOARD_COLUMNS
    paired_column: str = "mcnemar_p"
    delta_column: str = "accuracy_delta"
    delta_metric: str = "accuracy"
    prediction_columns: tuple[str, str] = ("y_true", "y_pred")

    def n_outputs(self, labels: list[Any]) -> int:
        """One logit per class."""
        return len(labels)

    def objective(self, train: TrainConfig) -> Objective:
        """Cross-entropy on class ids; softmax probabilities."""
        return Classification()

    def predict(self, fitted: Any, features: np.ndarray) -> np.ndarray:
        """Class probabilities (n, n_classes)."""
        return fitted.predict_proba(features)

    def metrics(self, y_true: np.ndarray, outputs: np.ndarray, labels: list[Any]) -> dict[str, Any]:
        """Accuracy, F1, ROC AUC, log loss, the confusion matrix, ... of class probabilities."""
        return classification_metrics(y_true, outputs, labels)

    def evaluate(
        self,
        y_true: np.ndarray,
        outputs: np.ndarray,
        labels: list[Any],
        model_dir: Path,
        history: list[dict[str, Any]] | None = None,
        radius: float | None = None,
    ) -> dict[str, Any]:
        """Test metrics; learning-curve, confusion-matrix and ROC plots; the class ids of the
        test rows and of the predictions in test_predictions.csv (for intervals and tests)."""
        lines = [
            "y_true,y_pred",
            *(f"{t},{p}" for t, p in zip(y_true, outputs.argmax(axis=1), strict=True)),
        ]
        atomic_write_text(model_dir / "test_predictions.csv", "\n".join(lines) + "\n")
        metrics = classification_metrics(y_true, outputs, labels)
        plots = model_dir / "plots"
        plots.mkdir(parents=True, exist_ok=True)
        if history:
            plot_learning_curves(history, plots / "learning_curve.png")
        plot_confusion_matrix(
            np.asarray(metrics["confusion_matrix"]), labels, plots / "confusion_matrix.png"
        )
        plot_roc(y_true, outputs, labels, plots / "roc.png")
        return metrics

    def leaderboard_figures(
        self, metrics: dict[str, Any], predictions: pd.DataFrame, bootstrap: int, seed: int
    ) -> dict[str, Any]:
        """Accuracy with its bootstrap interval, F1, ROC AUC and log loss."""
        low, high = bootstrap_ci(
            predictions["y_true"].to_numpy(), predictions["y_pred"].to_numpy(), bootstrap, seed
        )
        return {
            **{k: metrics.get(k) for k in ("accuracy", "f1_macro", "roc_auc", "log_loss")},
            "accuracy_ci_low": low,
            "accuracy_ci_high": high,
        }

    def paired_p(self, truth: np.ndarray, best: np.ndarray, other: np.ndarray) -> float:
        """Exact McNemar test on the rows the two models disagree on."""
        return mcnemar_p(truth, best, other)


CLASSIFICATION = ClassificationTask()

"""The interface every task module fills in."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import TrainConfig
from ladder.train.objective import Objective


class Task(Protocol):
    """What one kind of problem means for every step of the ladder.

    `outputs` are what a model predicts for a batch: class probabilities (n, n_classes) for
    classification, one number per row (n,) for regression (in the target's own units).
    """

    name: str
    metric_names: tuple[str, ...]  # what evaluate.metrics may list
    default_metrics: tuple[str, ...]
    default_primary: str
    lower_is_better: frozenset[str]
    headline: tuple[str, ...]  # metrics copied into the artifact's manifest
    leaderboard_columns: tuple[str, ...]
    paired_column: str  # the leaderboard column of the paired test against the best model
    delta_column: str  # a compressed variant's change of the headline metric
    delta_metric: str
    prediction_columns: tuple[str, str]  # test_predictions.csv: (truth, prediction) columns

    def n_outputs(self, labels: list[Any]) -> int:
        """The size of a network's output layer."""
        ...

    def objective(self, train: TrainConfig) -> Objective:
        """The Trainer's loss and prediction rule for this task."""
        ...

    def predict(self, fitted: Any, features: np.ndarray) -> np.ndarray:
        """The outputs of a fitted model (`ladder.runner.fit`) for preprocessed features."""
        ...

    def metrics(self, y_true: np.ndarray, outputs: np.ndarray, labels: list[Any]) -> dict[str, Any]:
        """The task's test metrics of `outputs` (no files written)."""
        ...

    def evaluate(
        self,
        y_true: np.ndarray,
        outputs: np.ndarray,
        labels: list[Any],
        model_dir: Path,
        history: list[dict[str, Any]] | None = None,
        radius: float | None = None,
    ) -> dict[str, Any]:
        """Test metrics, the task's plots and test_predictions.csv in `model_dir`."""
        ...

    def leaderboard_figures(
        self, metrics: dict[str, Any], predictions: pd.DataFrame, bootstrap: int, seed: int
    ) -> dict[str, Any]:
        """A model's metric columns of the leaderboard, with the primary metric's interval."""
        ...

    def paired_p(self, truth: np.ndarray, best: np.ndarray, other: np.ndarray) -> float:
        """The p-value of the paired test of `other`'s test predictions against the best's."""
        ...

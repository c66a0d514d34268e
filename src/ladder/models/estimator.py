"""ladder's neural models as scikit-learn estimators: `NeuralClassifier` and `LadderRegressor`.

They work next to scikit-learn's own models in `Pipeline`, `GridSearchCV` and `cross_val_score`.
What they share (parameters, configs, device, seed, validation split, input shaping, training)
is `NeuralEstimator` in `ladder.models.estimator_base`; each class here adds its targets, its
objective and its predict methods.
"""

from __future__ import annotations

from typing import Any, get_args

import numpy as np
from sklearn.base import ClassifierMixin, RegressorMixin  # noqa: TID253
from sklearn.utils.class_weight import compute_class_weight  # noqa: TID253
from sklearn.utils.multiclass import check_classification_targets  # noqa: TID253
from sklearn.utils.validation import (  # noqa: TID253
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from ladder.config import TrainConfig
from ladder.data.target import TargetScaling
from ladder.evaluate import METRICS, validation_metrics
from ladder.models.estimator_base import NeuralEstimator, split_rows
from ladder.train.objective import Classification, Objective, RegressionLoss, regression_objective


class NeuralClassifier(ClassifierMixin, NeuralEstimator):
    """A neural model of ladder's registry, trained by ladder's Trainer, as a sklearn classifier.

    Args: those of `NeuralEstimator`, and
        class_weight: None, "balanced" or {label: weight}, as in scikit-learn.

    The validation split (`validation_fraction`) is stratified when every class has two rows;
    it logs `val_loss` and `val_accuracy`. Attributes (after fit): those of `NeuralEstimator`,
    and classes_.
    """

    _task = "classification"
    _losses = ("auto", "cross_entropy")

    def __init__(
        self,
        model: str = "mlp",
        *,
        device: str = "cpu",
        random_state: int | np.random.RandomState | None = 0,
        verbose: bool = False,
        validation_fraction: float | None = None,
        class_weight: str | dict | None = None,
        **params: Any,
    ) -> None:
        super().__init__(
            model,
            device=device,
            random_state=random_state,
            verbose=verbose,
            validation_fraction=validation_fraction,
            **params,
        )
        self.class_weight = class_weight

    def _objective(self, train_cfg: TrainConfig) -> Objective:
        return Classification()

    def fit(self, X: Any, y: Any) -> NeuralClassifier:
        """Train a new module on X (n_samples, n_features) or images (n, C, H, W) and labels y."""
        plan = self._plan()
        X, y = validate_data(self, X, y, dtype=np.float32, allow_nd=True)
        check_classification_targets(y)
        classes, y_idx = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(
                f"{type(self).__name__} needs at least 2 classes in y; got 1 class: {classes[0]!r}"
            )
        weights = self._class_weights(y, classes)
        split = None
        if plan.validation_fraction is not None:
            stratify = y_idx if np.bincount(y_idx).min() >= 2 else None
            split = split_rows(len(y_idx), plan.validation_fraction, plan.seed, stratify)
        self._train(
            plan,
            X,
            y_idx,
            split,
            len(classes),
            class_weights=weights,
            val_metrics=_val_metrics(plan.train_cfg),
        )
        self.classes_ = classes
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities (n_samples, n_classes), columns in the order of `classes_`."""
        proba = self._outputs(X).astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class label of each sample."""
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def _class_weights(self, y: np.ndarray, classes: np.ndarray) -> np.ndarray | None:
        if self.class_weight is None:
            return None
        if not (self.class_weight == "balanced" or isinstance(self.class_weight, dict)):
            raise ValueError(
                f"class_weight must be None, 'balanced' or a dict {{label: weight}}; "
                f"got {self.class_weight!r}"
            )
        return compute_class_weight(self.class_weight, classes=classes, y=y).astype(np.float32)


class LadderRegressor(RegressorMixin, NeuralEstimator):
    """A neural model of ladder's registry, trained by ladder's Trainer, as a sklearn regressor.

    Args: those of `NeuralEstimator`; the TrainConfig keys `loss` ("mse", the default, "mae" or
    "huber") and `huber_delta` choose the loss.

    y is one numeric target, of shape (n,) or (n, 1). The network learns it standardised with
    the mean and standard deviation of the rows it trains on (as `ladder run` does), so the
    losses in `history_` are in units of y's standard deviation; `predict` returns y's own
    units. The validation split (`validation_fraction`) is unstratified and logs `val_loss`.
    Attributes (after fit): those of `NeuralEstimator`, and target_scaling_ (its mean, std).
    """

    _task = "regression"
    _losses = ("auto", *get_args(RegressionLoss))

    def _objective(self, train_cfg: TrainConfig) -> Objective:
        return regression_objective(train_cfg)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.single_output = True
        tags.target_tags.multi_output = False
        return tags

    def fit(self, X: Any, y: Any) -> LadderRegressor:
        """Train a new module on X (n_samples, n_features) or images (n, C, H, W) and targets y."""
        plan = self._plan()
        X, y = validate_data(
            self, X, y, dtype=np.float32, allow_nd=True, multi_output=True, y_numeric=True
        )
        if y.ndim == 2 and y.shape[1] != 1:
            raise ValueError(
                f"{type(self).__name__} predicts one target, but y has shape {y.shape}; "
                "multi-output regression is not supported (sklearn.multioutput."
                "MultiOutputRegressor fits one regressor per column)"
            )
        y = column_or_1d(y, dtype=np.float64, warn=True)  # (n, 1): a DataConversionWarning
        split, trained = None, y
        if plan.validation_fraction is not None:
            split = split_rows(len(y), plan.validation_fraction, plan.seed)
            trained = y[split[0]]
        scaling = TargetScaling.fit(trained, log1p=False, standardise=True)
        self._train(plan, X, scaling.forward(y), split, 1)
        self.target_scaling_ = scaling
        return self

    def predict(self, X: Any) -> np.ndarray:
        """The predicted value of each sample (n_samples,), in the units of y."""
        check_is_fitted(self)
        return self.target_scaling_.inverse(self._outputs(X))


# ----------------------------------------------------------------------------- helpers


def _val_metrics(train_cfg: TrainConfig) -> Any:
    """Validation metrics: accuracy, and the metric early stopping monitors if it is one."""
    stopping = train_cfg.early_stopping
    monitored = stopping.monitor.removeprefix("val_") if stopping is not None else ""
    return validation_metrics([monitored] if monitored in METRICS else [])

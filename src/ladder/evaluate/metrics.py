"""Classification metrics: pure functions of (y_true, y_prob) returning plain Python values.

`y_true` holds class indices (0..n-1) and `y_prob` is an (N, n) array of class probabilities;
predictions are its row-wise argmax. Undefined values never warn: precision and recall of a
class never predicted count as 0, and ROC AUC is None (nan for `metric_value`) when a class is
missing from `y_true`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import numpy as np
from sklearn import metrics as skm  # noqa: TID253

from ladder.errors import LadderError

_EPS = 1e-15  # log loss clips probabilities to [_EPS, 1 - _EPS]


def _accuracy(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean(y == p.argmax(axis=1)))


def _balanced_accuracy(y: np.ndarray, p: np.ndarray) -> float:
    cm = _confusion(y, p)
    support = cm.sum(axis=1)
    present = support > 0  # like scikit-learn: classes absent from y_true are left out
    return float(np.mean(np.diag(cm)[present] / support[present]))


def _averaged(score: Callable, average: str) -> Callable[[np.ndarray, np.ndarray], float]:
    def metric(y: np.ndarray, p: np.ndarray) -> float:
        return float(score(y, p.argmax(axis=1), average=average, zero_division=0))

    return metric


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    n = p.shape[1]
    if n < 2 or len(np.unique(y)) < n:
        return None  # one-vs-rest AUC needs positives and negatives of every class
    if n == 2:
        return float(skm.roc_auc_score(y, p[:, 1]))
    return float(skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=range(n)))


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    p = p / p.sum(axis=1, keepdims=True)
    return float(-np.mean(np.log(p[np.arange(len(y)), y])))


def _confusion(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    return skm.confusion_matrix(y, p.argmax(axis=1), labels=range(p.shape[1]))


METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float | None]] = {
    "accuracy": _accuracy,
    "balanced_accuracy": _balanced_accuracy,
    "f1_macro": _averaged(skm.f1_score, "macro"),
    "f1_weighted": _averaged(skm.f1_score, "weighted"),
    "precision_macro": _averaged(skm.precision_score, "macro"),
    "recall_macro": _averaged(skm.recall_score, "macro"),
    "roc_auc": _roc_auc,
    "log_loss": _log_loss,
}


def _as_arrays(y_true: np.ndarray, y_prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated int64 labels and float64 probability rows that sum to 1."""
    y = np.asarray(y_true).astype(np.int64, copy=False).ravel()
    p = np.asarray(y_prob, dtype=np.float64)
    if p.ndim != 2 or len(p) != len(y) or len(y) == 0:
        raise ValueError(f"expected y_prob of shape ({len(y)}, n_classes), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("y_prob contains nan or inf")
    if y.min() < 0 or y.max() >= p.shape[1]:
        raise ValueError(f"y_true must hold class indices in [0, {p.shape[1]}), got {y.max()}")
    total = p.sum(axis=1, keepdims=True)
    return y, p / np.where(total > 0, total, 1.0)


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray, labels: list) -> dict:
    """Every metric in METRICS, plus the confusion matrix (rows: true, columns: predicted)."""
    y, p = _as_arrays(y_true, y_prob)
    if len(labels) != p.shape[1]:
        raise ValueError(f"{len(labels)} labels for {p.shape[1]} probability columns")
    result: dict = {name: fn(y, p) for name, fn in METRICS.items()}
    result["confusion_matrix"] = _confusion(y, p).tolist()
    result["labels"] = [v.item() if isinstance(v, np.generic) else v for v in labels]
    return result


def metric_value(name: str, y_true: np.ndarray, y_prob: np.ndarray) -> float:
    """One metric by name (nan where undefined, e.g. roc_auc with a class missing)."""
    fn = _metric(name)
    value = fn(*_as_arrays(y_true, y_prob))
    return float("nan") if value is None else value


def validation_metrics(names: list[str]) -> Callable[[np.ndarray, np.ndarray], dict[str, float]]:
    """A function (y_true, y_prob) -> {name: value}; accuracy is always included.

    The trainer logs each as `val_<name>`.
    """
    chosen = list(dict.fromkeys(["accuracy", *names]))
    for name in chosen:
        _metric(name)  # unknown names fail now, not after the first epoch

    def compute(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
        return {name: metric_value(name, y_true, y_prob) for name in chosen}

    return compute


def _metric(name: str) -> Callable[[np.ndarray, np.ndarray], float | None]:
    if name not in METRICS:
        close = difflib.get_close_matches(name, list(METRICS), n=1, cutoff=0.6)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise LadderError(f"unknown metric '{name}'{hint} (metrics: {', '.join(METRICS)})")
    return METRICS[name]

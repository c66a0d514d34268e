"""A target column: how `data.task: auto` decides the task, regression targets, and how they
are scaled for training and back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.data.labels import encode_target, missing_target_error
from ladder.errors import DataError

# A numeric target with more distinct values than this is a quantity, not a class id.
MAX_CLASSES_FOR_NUMBER = 20


def detect_task(values: pd.Series, name: str) -> tuple[str, str | None]:
    """The task a target column asks for, and the one line that says why (None when the
    target is text or booleans, which are always classes).

    A string target is never regression; a numeric one is regression when it has
    non-integer values or more than MAX_CLASSES_FOR_NUMBER distinct values.
    """
    present = values.dropna()
    if pd.api.types.is_bool_dtype(present) or not pd.api.types.is_numeric_dtype(present):
        return "classification", None
    numbers = present.to_numpy(dtype=np.float64)
    distinct = int(pd.unique(numbers).size)
    finite = numbers[np.isfinite(numbers)]
    fractional = bool(np.any(finite != np.round(finite)))
    if fractional or distinct > MAX_CLASSES_FOR_NUMBER:
        what = "non-integer values" if fractional and distinct <= MAX_CLASSES_FOR_NUMBER else ""
        counted = f"{distinct:,} distinct values"
        return "regression", (
            f"target '{name}' is numeric with {what or counted}: regression; "
            "set data.task to override"
        )
    return "classification", (
        f"target '{name}' is numeric with {distinct} distinct integer values: classification; "
        "set data.task: regression to override"
    )


def numeric_target(
    values: pd.Series, where: str, name: str, drop_missing: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The values of a regression target: (keep, y), `keep` the mask of rows that have a value,
    `y` float64 of the kept rows. DataError naming the first non-numeric or infinite value and
    its data row, missing values (unless `drop_missing`), or a constant target."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy() & values.notna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{where}: target column '{name}' holds {values.iloc[row]!r} at data row {row + 1}, "
            "not a number; data.task: regression needs a numeric target (or set data.task: "
            "classification)"
        )
    y = numbers.to_numpy(dtype=np.float64)
    infinite = np.isinf(y)
    if infinite.any():
        row = int(np.flatnonzero(infinite)[0])
        raise DataError(
            f"{where}: target column '{name}' is {y[row]} at data row {row + 1}; a regression "
            "target must be finite (remove or fix the row)"
        )
    missing = np.isnan(y)
    if missing.any() and not drop_missing:
        raise missing_target_error(missing, where, name)
    kept = y[~missing]
    if len(kept) == 0:
        raise DataError(f"{where}: no row has a value in target column '{name}'")
    if np.all(kept == kept[0]):
        raise DataError(
            f"{where}: target column '{name}' is {kept[0]:g} in every row; there is nothing to "
            "predict"
        )
    return ~missing, kept


def encode_any_target(
    values: pd.Series, where: str, name: str, task: str, drop_missing: bool
) -> tuple[np.ndarray, np.ndarray, list[Any], str, str | None]:
    """A target column encoded for its task: (keep, y, labels, task, why), where `task`
    ("auto" decides from the values) is resolved and `why` says how auto decided (else None).
    Classification: y are int64 class ids into `labels`; regression: float64 values, no labels."""
    why = None
    if task == "auto":
        task, why = detect_task(values, name)
    if task == "regression":
        keep, y = numeric_target(values, where, name, drop_missing)
        return keep, y, [], task, why
    keep, y, labels = encode_target(values, where, name, drop_missing)
    return keep, y, labels, task, why


@dataclass(frozen=True)
class TargetScaling:
    """How a numeric target is transformed for training and back for predictions:
    optionally log1p, then (neural models) standardised with the training split's mean and
    standard deviation. Saved in the artifact's manifest so predictions come back in the
    target's own units."""

    log1p: bool = False
    mean: float = 0.0
    std: float = 1.0

    @classmethod
    def fit(cls, y: np.ndarray, log1p: bool, standardise: bool) -> TargetScaling:
        """The scaling of training targets `y`."""
        z = np.log1p(y) if log1p else np.asarray(y, dtype=np.float64)
        if not standardise:
            return cls(log1p=log1p)
        std = float(np.std(z))
        return cls(log1p=log1p, mean=float(np.mean(z)), std=std if std > 0 else 1.0)

    def forward(self, y: np.ndarray) -> np.ndarray:
        """Targets in the model's space (float32)."""
        z = np.log1p(y) if self.log1p else np.asarray(y, dtype=np.float64)
        return ((z - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Model outputs back in the target's units (float64)."""
        y = np.asarray(z, dtype=np.float64).reshape(len(z), -1)[:, 0] * self.std + self.mean
        return np.expm1(y) if self.log1p else y

    def to_json(self) -> dict[str, Any]:
        """The manifest's `target_scaling` entry."""
        return {"log1p": self.log1p, "mean": self.mean, "std": self.std}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> TargetScaling:
        """The scaling a manifest recorded (none recorded: the identity)."""
        data = data or {}
        return cls(
            bool(data.get("log1p", False)),
            float(data.get("mean", 0.0)),
            float(data.get("std", 1.0)),
        )

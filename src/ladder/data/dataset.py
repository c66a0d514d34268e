"""The `Dataset` container (features, class ids, label values) and `Splits`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.errors import DataError


@dataclass
class Dataset:
    """Features and labels of one data source or split.

    Attributes:
        kind: "tabular" (X is a DataFrame of raw feature columns), "image" (X is float32
            (N, C, H, W) in [0, 1]) or "text" (X is a 1-D object array of str; "" when missing).
        y: int64 class id per row, an index into `labels` (classification), or the float64
            target value (regression).
        labels: the sorted class values (JSON-native int | str | bool | float); [] for
            regression.
        target: name of the label column (tabular); a preprocessor silently drops it from inputs.
        source_columns: every column of the source table in file order (features, target and
            `data.drop` columns); prediction input may carry the non-feature ones.
        text_column: text data: the column holding the text ("text" for folders and files).
        dropped_non_finite: rows of the source dropped on load for a non-finite number
            (`data.non_finite: drop`).
        task: "classification" or "regression"; `task_reason`: how `data.task: auto` decided
            it, when it did from the target's values.
    """

    kind: Literal["tabular", "image", "text"]
    X: pd.DataFrame | np.ndarray
    y: np.ndarray
    labels: list[Any]
    target: str | None = None
    source_columns: list[str] | None = None
    text_column: str | None = None
    dropped_non_finite: int = 0
    task: str = "classification"
    task_reason: str | None = None

    def __len__(self) -> int:
        """Number of rows (examples)."""
        return len(self.y)

    def subset(self, idx: np.ndarray) -> Dataset:
        """The rows at positions `idx` (labels unchanged, so class ids keep their meaning)."""
        idx = np.asarray(idx, dtype=np.int64)
        if isinstance(self.X, pd.DataFrame):
            X: pd.DataFrame | np.ndarray = self.X.iloc[idx].reset_index(drop=True)
        else:
            X = self.X[idx]
        return replace(self, X=X, y=self.y[idx])

    def with_labels(self, labels: list[Any], source: str = "data") -> Dataset:
        """The same rows with `y` re-indexed into another label list (e.g. a model's classes).

        Labels are matched by value, or by their text when the values differ only in type
        (folder name "3" and IDX label 3). Raises DataError naming labels that are not in `labels`.
        """
        if list(labels) == list(self.labels):
            return self
        mapping = _label_mapping(self.labels, list(labels))
        present = set(np.unique(self.y).tolist())
        unknown = [lab for i, lab in enumerate(self.labels) if mapping[i] < 0 and i in present]
        if unknown:
            raise DataError(
                f"{source}: labels {unknown} are not among the known classes {list(labels)}"
            )
        y = np.asarray(mapping, dtype=np.int64)[self.y] if len(self.y) else self.y
        return replace(self, y=y, labels=list(labels))


@dataclass
class Splits:
    """Train, validation (None when `split.val` is 0) and test datasets sharing one label list."""

    train: Dataset
    val: Dataset | None
    test: Dataset

    def items(self) -> list[tuple[str, Dataset]]:
        """The non-empty splits as (name, dataset) pairs, in train, val, test order."""
        pairs = [("train", self.train), ("val", self.val), ("test", self.test)]
        return [(name, ds) for name, ds in pairs if ds is not None]


def _label_mapping(old: list[Any], new: list[Any]) -> list[int]:
    """For each label in `old`, its index in `new` (by value, else by text), or -1."""
    by_value: dict[Any, int] = {}
    for i, lab in enumerate(new):
        by_value.setdefault((type(lab) is bool, lab), i)
    by_text = {str(lab): i for i, lab in enumerate(new)}
    out = []
    for lab in old:
        idx = by_value.get((type(lab) is bool, lab))
        out.append(idx if idx is not None else by_text.get(str(lab), -1))
    return out

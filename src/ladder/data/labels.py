"""Class ids of a classification target column."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.errors import DataError

# A float target with more distinct non-integer values than this looks like regression.
MAX_CLASSES_FOR_FLOAT_TARGET = 20


def encode_target(
    values: pd.Series, where: str, name: str, drop_missing: bool = False
) -> tuple[np.ndarray, np.ndarray, list[Any]]:
    """Class ids for a target column.

    Returns (keep, y, labels): `keep` is the boolean mask of rows that have a label, `y` the
    int64 index of each kept row into `labels`, the sorted unique JSON-native label values.
    """
    missing = values.isna().to_numpy()
    if missing.any() and not drop_missing:
        raise missing_target_error(missing, where, name)
    values = values[~missing]
    if len(values) == 0:
        raise DataError(f"{where}: no row has a value in target column '{name}'")
    if pd.api.types.is_float_dtype(values):
        numbers = values.to_numpy(dtype=np.float64)
        if np.array_equal(numbers, np.round(numbers)):
            values = pd.Series(numbers.astype(np.int64))  # 1.0, 2.0 (floats because of NaNs)
        elif values.nunique() > MAX_CLASSES_FOR_FLOAT_TARGET:
            raise DataError(
                f"{where}: target column '{name}' has {values.nunique()} distinct non-integer "
                "values, which looks like regression; set data.task: regression"
            )
    labels = values.drop_duplicates().tolist()
    try:
        labels = sorted(labels)
    except TypeError:  # mixed types (e.g. JSON 1 and "a"): compare as text
        values = values.map(str)
        labels = sorted(values.drop_duplicates().tolist())
    y = pd.Index(labels).get_indexer(values).astype(np.int64)
    return ~missing, y, labels


def missing_target_error(missing: np.ndarray, where: str, name: str) -> DataError:
    """The error for target rows without a value (`missing`: a boolean mask of the rows)."""
    rows = np.flatnonzero(missing) + 1
    shown = ", ".join(str(r) for r in rows[:10]) + (", ..." if len(rows) > 10 else "")
    return DataError(
        f"{where}: {len(rows)} rows have no value in target column '{name}' (data rows "
        f"{shown}); set data.drop_missing_target: true to drop them"
    )

"""Which numbers a model can take: finite and within float32's range (models compute in float32).

One check serves training data (`data.non_finite`), `ladder predict`, `ladder evaluate`, the
library and the server. NaN is not refused here: it is a missing value (see
`TabularPreprocessor.check_input`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ladder.errors import DataError

FP32_MAX = float(np.finfo(np.float32).max)

Where = Callable[[str, int], str]
"""Names a value in messages from its column and 0-based row, e.g. "instances[3].age"."""


def data_row(column: str, row: int) -> str:
    """The default `Where`: "column 'age', row 4" (rows counted from 1)."""
    return f"column {column!r}, row {row + 1}"


def non_finite(values: np.ndarray) -> np.ndarray:
    """Boolean mask of `values` that are ±inf or beyond ±FP32_MAX (NaN is False: missing)."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.abs(values) > FP32_MAX


def check_finite(values: np.ndarray, column: str, where: Where = data_row) -> None:
    """DataError naming the first non-finite value of `column` (its `values`) and its row."""
    bad = non_finite(values)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        more = f" (and {int(bad.sum()) - 1} more)" if bad.sum() > 1 else ""
        raise DataError(
            f"{where(column, i)}: {float(values[i])!r} is not a finite number within "
            f"±{FP32_MAX:.3g} (models compute in float32){more}"
        )

"""The one finiteness check of training data, prediction input and served requests."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.data.values import FP32_MAX, check_finite, non_finite
from ladder.errors import DataError


def test_inf_and_numbers_beyond_float32_are_non_finite_but_nan_is_missing():
    values = np.array([1.0, np.nan, FP32_MAX, -np.inf, 1e39, -1e300, np.inf])
    assert non_finite(values).tolist() == [False, False, False, True, True, True, True]
    check_finite(values[:3], "x")  # NaN and float32's largest number pass


def test_check_finite_names_the_column_and_the_first_row():
    with pytest.raises(DataError) as info:
        check_finite(np.array([0.5, 1e308, np.inf]), "size")
    message = str(info.value)
    assert message.startswith("column 'size', row 2: 1e+308 is not a finite number")
    assert "float32" in message and "1 more" in message
    with pytest.raises(DataError, match=r"^instances\[0\]\.size: -inf"):
        check_finite(np.array([-np.inf]), "size", lambda col, row: f"instances[{row}].{col}")

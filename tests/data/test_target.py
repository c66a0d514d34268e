"""The target column: how data.task auto decides, numeric targets, and their scaling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ladder.data.target import TargetScaling, detect_task, encode_any_target, numeric_target
from ladder.errors import DataError


@pytest.mark.parametrize(
    ("values", "task"),
    [
        (pd.Series(["a", "b", "a"]), "classification"),
        (pd.Series([True, False, True]), "classification"),
        (pd.Series([1, 2, 3, 2, 1]), "classification"),  # a few integers: class ids
        (pd.Series([1.0, 2.0, np.nan, 3.0]), "classification"),  # integers stored as floats
        (pd.Series(np.arange(21)), "regression"),  # more than 20 distinct values
        (pd.Series([0.5, 1.5, 0.5]), "regression"),  # not integers
        (pd.Series(["1.5", "2.5"]), "classification"),  # text is never a quantity
    ],
)
def test_auto_decides_from_the_values(values, task):
    assert detect_task(values, "y")[0] == task


def test_auto_says_how_it_decided():
    _, why = detect_task(pd.Series(np.linspace(0, 1, 3512)), "price")
    assert why == (
        "target 'price' is numeric with 3,512 distinct values: regression; "
        "set data.task to override"
    )
    assert detect_task(pd.Series(["x"]), "label")[1] is None


def test_numeric_targets_keep_their_values_and_drop_missing_ones_when_asked():
    keep, y = numeric_target(pd.Series([1.5, None, "2.5"]), "t.csv", "y", drop_missing=True)
    assert keep.tolist() == [True, False, True]
    np.testing.assert_array_equal(y, [1.5, 2.5])
    with pytest.raises(
        DataError, match=r"1 rows have no value in target column 'y' \(data rows 2\)"
    ):
        numeric_target(pd.Series([1.5, None, 2.5]), "t.csv", "y")


def test_a_regression_target_never_becomes_classes():
    _, y, labels, task, why = encode_any_target(
        pd.Series([1, 2, 3]), "t.csv", "y", "regression", False
    )
    assert task == "regression" and labels == [] and why is None and y.dtype == np.float64


@pytest.mark.parametrize(("log1p", "standardise"), [(False, True), (True, True), (True, False)])
def test_target_scaling_round_trips(log1p, standardise):
    y = np.array([0.0, 3.0, 10.0, 250.0])
    scaling = TargetScaling.fit(y, log1p=log1p, standardise=standardise)
    z = scaling.forward(y)
    assert z.dtype == np.float32
    if standardise:
        assert abs(float(z.mean())) < 1e-6 and abs(float(z.std()) - 1) < 1e-5
    np.testing.assert_allclose(scaling.inverse(z), y, rtol=1e-5, atol=1e-4)
    assert TargetScaling.from_json(scaling.to_json()) == scaling


def test_a_constant_training_target_keeps_a_unit_scale():
    scaling = TargetScaling.fit(np.array([4.0, 4.0]), log1p=False, standardise=True)
    assert scaling.std == 1.0 and scaling.mean == 4.0

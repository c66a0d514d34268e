"""Tabular and image preprocessors: fitted on training rows only, JSON round trip, input checks."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ladder.config import SplitConfig
from ladder.data import (
    Dataset,
    ImagePreprocessor,
    TabularPreprocessor,
    fit_preprocessor,
    preprocessor_from_json,
    split_dataset,
)
from ladder.errors import ArtifactError, DataError


def table() -> Dataset:
    X = pd.DataFrame(
        {
            "age": [20.0, np.nan, 40.0, 30.0, 50.0],
            "colour": ["red", "blue", None, "red", "green"],
            "member": [True, False, True, True, False],
            "constant": [3, 3, 3, 3, 3],
        }
    )
    return Dataset(
        "tabular",
        X,
        np.array([0, 1, 0, 1, 0]),
        ["n", "y"],
        target="label",
        source_columns=["id", "age", "colour", "member", "constant", "label"],
    )


def test_numeric_and_categorical_encoding():
    pre = fit_preprocessor(table(), None)
    assert isinstance(pre, TabularPreprocessor)
    assert pre.feature_names == [
        "age",
        "colour=blue",
        "colour=green",
        "colour=red",
        "member=False",
        "member=True",
        "constant",
    ]
    assert pre.output_shape == (7,)
    out = pre.transform(table().X)
    assert out.dtype == np.float32 and out.shape == (5, 7)
    # age: NaN -> median 35; then standardized with the imputed column's mean and std
    filled = np.array([20, 35, 40, 30, 50.0])
    np.testing.assert_allclose(out[:, 0], (filled - filled.mean()) / filled.std(), rtol=1e-5)
    # colour: missing -> most frequent ("red")
    np.testing.assert_array_equal(
        out[:, 1:4], [[0, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 1], [0, 1, 0]]
    )
    np.testing.assert_array_equal(out[:, 5], [1, 0, 1, 1, 0])
    np.testing.assert_array_equal(out[:, 6], 0.0)  # std 0 -> 1, so a constant becomes 0


def test_unknown_category_is_all_zeros_and_target_is_dropped():
    pre = fit_preprocessor(table(), None)
    new = pd.DataFrame(
        {
            "label": ["y"],
            "age": [30.0],
            "colour": ["purple"],
            "member": [False],
            "constant": [3],
            "id": [7],
        }
    )
    out = pre.transform(new)
    np.testing.assert_array_equal(out[0, 1:4], [0, 0, 0])
    np.testing.assert_array_equal(out[0, 4:6], [1, 0])


def test_column_checks_name_missing_and_extra_columns():
    pre = fit_preprocessor(table(), None)
    X = table().X
    with pytest.raises(DataError, match=r"missing columns: colour; unexpected columns: color"):
        pre.transform(X.rename(columns={"colour": "color"}))
    with pytest.raises(DataError, match=r"unexpected columns: shoe_size \(expected: age, colour"):
        pre.transform(X.assign(shoe_size=1))
    with pytest.raises(DataError, match=r"column 'age' expects numbers, got 'old' \(row 2\)"):
        pre.transform(X.assign(age=["1", "old", "3", "4", "5"]))
    with pytest.raises(DataError, match=r"input array has 2 columns, expected 4"):
        pre.transform(np.zeros((1, 2)))


def test_numbers_as_text_are_accepted():
    pre = fit_preprocessor(table(), None)
    as_text = table().X.assign(age=["20", None, "40", "30", "50"])
    np.testing.assert_allclose(pre.transform(as_text), pre.transform(table().X))


def test_statistics_come_from_the_training_split_only():
    rng = np.random.default_rng(0)
    n = 200
    X = pd.DataFrame({"x": rng.normal(5, 2, n), "c": rng.choice(["p", "q", "r"], n)})
    X.loc[rng.choice(n, 20, replace=False), "x"] = np.nan
    ds = Dataset("tabular", X, rng.integers(0, 2, n), [0, 1])
    splits = split_dataset(ds, SplitConfig(test=0.3, val=0.2), seed=0)
    state = fit_preprocessor(splits.train, None).to_json()
    train_x = splits.train.X["x"]
    filled = train_x.fillna(train_x.median())
    assert state["numeric"]["x"]["median"] == pytest.approx(train_x.median())
    assert state["numeric"]["x"]["mean"] == pytest.approx(filled.mean())
    assert state["numeric"]["x"]["std"] == pytest.approx(filled.std(ddof=0))
    assert state["numeric"]["x"]["mean"] != pytest.approx(X["x"].fillna(X["x"].median()).mean())
    counts = splits.train.X["c"].value_counts()
    assert state["categorical"]["c"]["most_frequent"] == counts.idxmax()


def test_tabular_json_round_trip():
    pre = fit_preprocessor(table(), None)
    state = json.loads(json.dumps(pre.to_json()))
    again = preprocessor_from_json(state)
    np.testing.assert_array_equal(again.transform(table().X), pre.transform(table().X))
    assert again.input_spec() == pre.input_spec()
    spec = pre.input_spec()
    assert spec["kind"] == "tabular" and spec["columns"] == ["age", "colour", "member", "constant"]
    assert spec["dtypes"]["age"] == "float64" and spec["dtypes"]["member"] == "bool"


def test_huge_numbers_are_standardized_without_overflow():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, 200)
    ds = Dataset("tabular", pd.DataFrame({"big": x * 1e300, "x": x}), np.arange(200) % 2, [0, 1])
    pre = fit_preprocessor(ds, None)
    out = pre.transform(ds.X)
    assert np.isfinite(out).all()
    assert out[:, 0].std() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(out[:, 0], out[:, 1], atol=1e-5)  # the same information
    assert pre.numeric["x"] == {"median": np.median(x), "mean": x.mean(), "std": x.std()}


def test_the_columns_that_may_be_missing_are_recorded():
    pre = fit_preprocessor(table(), None)
    nullable = {"age": True, "colour": True, "member": False, "constant": False}
    assert pre.input_spec()["nullable"] == nullable
    again = preprocessor_from_json(json.loads(json.dumps(pre.to_json())))
    assert again.nullable == nullable


def test_input_check_imputes_only_columns_that_had_missing_values():
    pre = fit_preprocessor(table(), None)
    X = table().X
    checked = pre.check_input(X.drop(columns=["age", "colour"]).assign(id=1))  # absent: missing
    assert list(checked.columns) == list(X.columns) and checked["age"].isna().all()
    np.testing.assert_array_equal(pre.transform(checked)[:, 0], 0.0)  # the median: (35 - 35) / std
    with pytest.raises(DataError, match=r"^column 'constant', row 2: missing \('constant' had no"):
        pre.check_input(X.assign(constant=[3, None, 3, 3, 3]))
    with pytest.raises(DataError, match=r"^column 'member', row 1: missing"):
        pre.check_input(X.assign(member=[None, True, True, True, False]))
    with pytest.raises(DataError, match=r"input is missing columns: member"):
        pre.check_input(X.drop(columns=["member", "age"]))
    with pytest.raises(DataError, match=r"^column 'age', row 3: inf is not a finite number"):
        pre.check_input(X.assign(age=["1", None, "inf", "2", "3"]))
    with pytest.raises(DataError, match=r"^rows\[0\]\.age: -6e\+38"):
        pre.check_input(X.assign(age=-6e38), lambda col, row: f"rows[{row}].{col}")


def test_an_artifact_without_missing_value_flags_refuses_every_missing_value():
    state = fit_preprocessor(table(), None).to_json()
    del state["nullable"]
    old = preprocessor_from_json(state)
    with pytest.raises(DataError, match=r"row 2: missing \(this artifact predates"):
        old.check_input(table().X)
    complete = table().X.fillna({"age": 1.0, "colour": "red"})
    np.testing.assert_array_equal(old.transform(old.check_input(complete)), old.transform(complete))


def image_data(n: int = 6) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.random((n, 3, 4, 6), dtype=np.float32)
    X[:, 2] = 0.5  # a constant channel: std 0 -> 1
    return Dataset("image", X, np.arange(n) % 2, [0, 1])


def test_image_statistics_per_channel():
    ds = image_data()
    pre = fit_preprocessor(ds, None)
    assert isinstance(pre, ImagePreprocessor)
    np.testing.assert_allclose(pre.mean, ds.X.mean(axis=(0, 2, 3)), rtol=1e-5)
    np.testing.assert_allclose(pre.std[:2], ds.X[:, :2].std(axis=(0, 2, 3)), rtol=1e-4)
    assert pre.std[2] == 1.0
    out = pre.transform(ds.X)
    assert out.shape == (6, 3, 4, 6) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, :2].mean(axis=(0, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(out[:, :2].std(axis=(0, 2, 3)), 1.0, atol=1e-4)


def test_image_resize_spec_and_round_trip():
    ds = image_data()
    pre = fit_preprocessor(ds, image_size=8)
    assert pre.output_shape == (3, 8, 8)
    assert pre.input_spec() == {
        "kind": "image",
        "channels": 3,
        "height": 4,
        "width": 6,
        "image_size": 8,
    }
    out = pre.transform(ds.X)
    assert out.shape == (6, 3, 8, 8)
    again = preprocessor_from_json(json.loads(json.dumps(pre.to_json())))
    np.testing.assert_array_equal(again.transform(ds.X), out)


def test_image_shape_is_checked():
    pre = fit_preprocessor(image_data(), None)
    with pytest.raises(
        DataError, match=r"expected images of shape \(N, 3, 4, 6\), got \(2, 1, 4, 6\)"
    ):
        pre.transform(np.zeros((2, 1, 4, 6)))
    gray = fit_preprocessor(
        Dataset("image", np.ones((2, 1, 3, 3), np.float32), np.array([0, 1]), [0, 1]), None
    )
    assert gray.transform(np.ones((4, 3, 3))).shape == (4, 1, 3, 3)  # (N, H, W) accepted


def test_malformed_json_is_an_artifact_error():
    with pytest.raises(ArtifactError, match=r"unknown preprocessor kind 'audio'"):
        preprocessor_from_json({"kind": "audio"})
    with pytest.raises(ArtifactError, match=r"malformed image preprocessor"):
        preprocessor_from_json({"kind": "image", "channels": 1})

"""split_dataset (fractions, stratification, seeds, a separate test set) and describe_data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ladder.config import SplitConfig
from ladder.data import Dataset, describe_data, split_dataset
from ladder.errors import DataError


def table(n: int = 100, minority: int = 20) -> Dataset:
    """n rows, `minority` of them class 'b'; column `id` identifies each row."""
    y = np.array([1] * minority + [0] * (n - minority), dtype=np.int64)
    X = pd.DataFrame({"id": np.arange(n), "colour": np.where(y == 1, "red", "blue")})
    return Dataset("tabular", X, y, ["a", "b"], target="label")


def images(n: int = 20) -> Dataset:
    rng = np.random.default_rng(0)
    X = rng.random((n, 1, 4, 4), dtype=np.float32)
    return Dataset("image", X, np.arange(n, dtype=np.int64) % 2, [0, 1])


def ids(ds: Dataset) -> set[int]:
    return set(ds.X["id"].tolist())


def test_fractions_cover_all_rows_once():
    splits = split_dataset(table(), SplitConfig(test=0.2, val=0.1), seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (70, 10, 20)
    parts = [ids(splits.train), ids(splits.val), ids(splits.test)]
    assert set.union(*parts) == set(range(100))
    assert sum(len(p) for p in parts) == 100


def test_stratified_splits_keep_class_proportions():
    splits = split_dataset(table(), SplitConfig(test=0.2, val=0.1, stratify=True), seed=3)
    assert int((splits.test.y == 1).sum()) == 4  # 20% of 20 minority rows
    assert int((splits.val.y == 1).sum()) == 2
    assert int((splits.train.y == 1).sum()) == 14
    assert splits.train.labels == ["a", "b"] and splits.train.target == "label"


def test_same_seed_same_split_other_seed_differs():
    cfg = SplitConfig()
    a, b = split_dataset(table(), cfg, seed=1), split_dataset(table(), cfg, seed=1)
    c = split_dataset(table(), cfg, seed=2)
    assert a.test.X["id"].tolist() == b.test.X["id"].tolist()
    assert ids(a.test) != ids(c.test)


def test_val_zero_gives_no_validation_split():
    splits = split_dataset(table(), SplitConfig(test=0.25, val=0.0), seed=0)
    assert splits.val is None and (len(splits.train), len(splits.test)) == (75, 25)
    assert [name for name, _ in splits.items()] == ["train", "test"]


def test_class_with_one_row_under_stratification():
    ds = table(n=30, minority=1)
    with pytest.raises(DataError, match=r"class 'b' has only 1 row.*stratify: false"):
        split_dataset(ds, SplitConfig(stratify=True), seed=0)
    splits = split_dataset(ds, SplitConfig(stratify=False), seed=0)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 30


def test_separate_test_set_replaces_the_test_split_and_is_relabelled():
    ds = table()
    test = Dataset(
        "tabular",
        pd.DataFrame({"id": [500, 501, 502], "colour": ["red"] * 3}),
        np.array([0, 1, 0]),
        ["b", "a"],
    )
    splits = split_dataset(ds, SplitConfig(test=0.2, val=0.1), seed=0, test=test)
    assert ids(splits.test) == {500, 501, 502}
    assert splits.test.labels == ["a", "b"] and splits.test.y.tolist() == [1, 0, 1]
    assert (len(splits.train), len(splits.val)) == (90, 10)
    assert ids(splits.train) | ids(splits.val) == set(range(100))


def test_separate_test_set_with_unknown_class_or_other_kind():
    unknown = Dataset("tabular", pd.DataFrame({"id": [1]}), np.array([0]), ["zebra"])
    with pytest.raises(DataError, match=r"data.test_source: labels \['zebra'\]"):
        split_dataset(table(), SplitConfig(), seed=0, test=unknown)
    with pytest.raises(DataError, match=r"is image data but data.source is tabular"):
        split_dataset(table(), SplitConfig(), seed=0, test=images())
    small = Dataset("image", np.zeros((2, 1, 3, 3), np.float32), np.array([0, 1]), [0, 1])
    with pytest.raises(DataError, match=r"images are 1x3x3 but training images are 1x4x4"):
        split_dataset(images(), SplitConfig(), seed=0, test=small)


def test_folder_labels_match_integer_labels_by_text():
    test = Dataset("image", np.zeros((2, 1, 4, 4), np.float32), np.array([0, 1]), ["0", "1"])
    splits = split_dataset(images(), SplitConfig(val=0.0), seed=0, test=test)
    assert splits.test.labels == [0, 1] and splits.test.y.tolist() == [0, 1]


def test_describe_data_tabular():
    splits = split_dataset(table(), SplitConfig(test=0.2, val=0.1), seed=0)
    info = describe_data(splits, "animals.csv")
    assert info["source"] == "animals.csv" and info["kind"] == "tabular"
    assert info["rows"] == {"train": 70, "val": 10, "test": 20, "total": 100}
    assert info["labels"] == ["a", "b"]
    assert info["classes"][1] == {"label": "b", "train": 14, "val": 2, "test": 4, "total": 20}
    assert info["features"]["columns"][0] == {"name": "id", "dtype": "int64"}
    assert len(info["sha256"]) == 64


def test_describe_data_image_without_val():
    splits = split_dataset(images(), SplitConfig(test=0.5, val=0.0), seed=0)
    info = describe_data(splits, "builtin:toy")
    assert info["features"] == {"channels": 1, "height": 4, "width": 4}
    assert info["rows"] == {"train": 10, "test": 10, "total": 20}
    assert all("val" not in c for c in info["classes"])


@pytest.mark.parametrize("make", [table, images])
def test_fingerprint_is_stable_and_sensitive(make):
    def sha(ds: Dataset, seed: int) -> str:
        return describe_data(split_dataset(ds, SplitConfig(), seed=seed), "x")["sha256"]

    ds = make()
    assert sha(ds, 0) == sha(make(), 0) == sha(ds, 7)  # same rows -> same fingerprint
    changed = make()
    if isinstance(changed.X, pd.DataFrame):
        changed.X.loc[5, "id"] = 999
    else:
        changed.X[5, 0, 0, 0] += 0.5
    assert sha(changed, 0) != sha(ds, 0)
    relabelled = make()
    relabelled.y = relabelled.y.copy()
    relabelled.y[0] = 1 - relabelled.y[0]
    assert sha(relabelled, 0) != sha(ds, 0)

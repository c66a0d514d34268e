"""read_records: prediction input for tabular and image artifacts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from data_helpers import write_png

from ladder.data import read_records
from ladder.errors import DataError

TABULAR = {
    "kind": "tabular",
    "columns": ["size", "colour"],
    "dtypes": {"size": "float64", "colour": "str"},
    "target": "label",
    "source_columns": ["size", "colour", "label"],
}
GRAY = {"kind": "image", "channels": 1, "height": 4, "width": 4, "image_size": None}
RGB = {**GRAY, "channels": 3}


def test_tabular_files(tmp_path):
    csv = tmp_path / "in.csv"
    csv.write_text("size, colour\n1.5, red\n2, blue\n")
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text('{"size": 1.5, "colour": "red"}\n{"size": 2, "colour": "blue"}\n')
    for path in (csv, str(jsonl)):
        X, ids = read_records(path, TABULAR)
        assert ids is None
        assert X["size"].tolist() == [1.5, 2.0] and X["colour"].tolist() == ["red", "blue"]


def test_headerless_file_uses_the_training_columns(tmp_path):
    path = tmp_path / "in.tsv"
    path.write_text("1.5\tred\tyes\n2\tblue\tno\n")
    X, _ = read_records(path, TABULAR)
    assert list(X.columns) == ["size", "colour", "label"] and len(X) == 2
    path.write_text("1.5\tred\n")
    X, _ = read_records(path, TABULAR)
    assert list(X.columns) == ["size", "colour"] and X["size"].tolist() == [1.5]


def test_tabular_in_memory_records():
    frame = pd.DataFrame({"size": [1.0], "colour": ["red"]}, index=[7])
    X, _ = read_records(frame, TABULAR)
    assert list(X.index) == [0]
    X, _ = read_records({"size": 1.0, "colour": "red"}, TABULAR)
    assert X.to_dict("records") == [{"size": 1.0, "colour": "red"}]
    X, _ = read_records({"size": [1.0, 2.0], "colour": ["red", "blue"]}, TABULAR)
    assert len(X) == 2
    X, _ = read_records([{"size": 1.0, "colour": "red"}, {"size": 2.0}], TABULAR)
    assert len(X) == 2 and pd.isna(X.loc[1, "colour"])


def test_bad_tabular_input(tmp_path):
    with pytest.raises(DataError, match=r"nope.csv: file not found"):
        read_records(tmp_path / "nope.csv", TABULAR)
    with pytest.raises(DataError, match=r"record 1: expected a mapping"):
        read_records([{"size": 1}, 5], TABULAR)
    with pytest.raises(DataError, match=r"no records"):
        read_records([], TABULAR)
    bad = tmp_path / "bad.csv"
    bad.write_text("size,colour\n1,red,extra\n")
    with pytest.raises(DataError, match=r"bad.csv: line 2 has 3 fields"):
        read_records(bad, TABULAR)
    with pytest.raises(DataError, match=r"unknown kind 'audio'"):
        read_records([], {"kind": "audio"})


def test_image_folder_recursive_sorted_with_ids(tmp_path):
    write_png(tmp_path / "b" / "2.png", np.full((4, 4), 255))
    write_png(tmp_path / "a" / "1.png", np.zeros((8, 8)))  # resized to the raw 4x4
    write_png(tmp_path / "top.jpg", np.full((4, 4, 3), 128))  # RGB -> gray
    (tmp_path / "notes.txt").write_text("not an image")
    X, ids = read_records(tmp_path, GRAY)
    assert ids == [
        str(tmp_path / "a" / "1.png"),
        str(tmp_path / "b" / "2.png"),
        str(tmp_path / "top.jpg"),
    ]
    assert X.shape == (3, 1, 4, 4) and X.dtype == np.float32
    assert X[0].max() == 0.0 and X[1].min() == 1.0
    np.testing.assert_allclose(X[2], 128 / 255, atol=0.02)


def test_image_paths_to_rgb(tmp_path):
    path = write_png(tmp_path / "x.png", np.full((4, 4), 51))
    X, ids = read_records([path], RGB)
    assert X.shape == (1, 3, 4, 4) and ids == [str(path)]
    np.testing.assert_allclose(X, 0.2, atol=1e-6)
    X, ids = read_records(str(path), RGB)  # a single file
    assert X.shape == (1, 3, 4, 4)


def test_image_arrays():
    X, ids = read_records(np.full((2, 1, 4, 4), 255, dtype=np.uint8), GRAY)
    assert ids is None and X.dtype == np.float32 and np.all(X == 1.0)
    assert read_records(np.zeros((5, 4, 4)), GRAY)[0].shape == (5, 1, 4, 4)
    assert read_records(np.zeros((4, 4)), RGB)[0].shape == (1, 3, 4, 4)
    assert read_records(np.zeros((2, 3, 8, 8), np.float32), GRAY)[0].shape == (2, 1, 4, 4)
    with pytest.raises(DataError, match=r"expected an image array .* got \(1, 2, 3, 4, 4\)"):
        read_records(np.zeros((1, 2, 3, 4, 4)), GRAY)


def test_bad_image_input(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"broken.png: cannot decode image"):
        read_records(tmp_path, GRAY)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match=r"empty: no images"):
        read_records(empty, GRAY)
    with pytest.raises(DataError, match=r"missing.png: file not found"):
        read_records([tmp_path / "missing.png"], GRAY)
    with pytest.raises(DataError, match=r"gone: no such file or folder"):
        read_records(tmp_path / "gone", GRAY)

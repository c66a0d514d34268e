"""read_records for text artifacts: strings, arrays, .txt files and folders, tables, records."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ladder.data import read_records
from ladder.errors import DataError

TEXT = {"kind": "text", "column": "text", "target": "label", "source_columns": ["label", "text"]}


def read(inp, spec=TEXT):
    X, ids = read_records(inp, spec)
    assert isinstance(X, np.ndarray) and X.dtype == object and X.ndim == 1
    assert all(isinstance(t, str) for t in X)
    return X.tolist(), ids


def test_list_of_strings():
    assert read(["a good film", "", "bad"]) == (["a good film", "", "bad"], None)
    assert read(("tuple", "of texts")) == (["tuple", "of texts"], None)
    # missing values are empty texts, as in an array
    assert read(["ok", None, float("nan"), 3]) == (["ok", "", "", "3"], None)


def test_numpy_array_and_series():
    assert read(np.array(["x", "y"])) == (["x", "y"], None)
    assert read(np.array(["x", None, 3], dtype=object)) == (["x", "", "3"], None)
    assert read(pd.Series(["x", None], index=[5, 9])) == (["x", ""], None)
    with pytest.raises(DataError, match="one text per row"):
        read_records(np.array([["a", "b"], ["c", "d"]]), TEXT)


def test_bare_string_that_is_not_a_path_is_one_text():
    assert read("what a great movie") == (["what a great movie"], None)
    assert read("two lines\nstill one text") == (["two lines\nstill one text"], None)
    review = "a long review without a line break " * 20  # longer than a file name may be
    assert read(review) == ([review], None)
    assert read("x" * 5000) == (["x" * 5000], None)


def test_txt_file_is_one_text_per_line(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("first\r\nsecond\u2028same line\n\nfourth\n".encode())
    for inp in (path, str(path)):
        assert read(inp) == (["first", "second\u2028same line", "", "fourth"], None)
    with pytest.raises(DataError, match=r"missing\.txt: file not found"):
        read_records(str(tmp_path / "missing.txt"), TEXT)


def test_folder_of_txt_files_is_searched_recursively(tmp_path):
    (tmp_path / "pos").mkdir()
    (tmp_path / "b.txt").write_text("top level")
    (tmp_path / "pos" / "a.txt").write_text("in a class folder\nwith two lines")
    (tmp_path / "pos" / "skip.md").write_text("not a text file")
    texts, ids = read(str(tmp_path))
    assert ids == [str(tmp_path / "b.txt"), str(tmp_path / "pos" / "a.txt")]
    assert texts == ["top level", "in a class folder\nwith two lines"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"empty: no \.txt files"):
        read_records(tmp_path / "empty", TEXT)


def test_csv_with_the_text_column(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text('text\n"a, quoted text"\n\nplain\n')
    assert read(path) == (["a, quoted text", "plain"], None)
    path.write_text("label,text,extra\nspam,win now,1\nham,,2\n")
    assert read(str(path)) == (["win now", ""], None)


def test_other_text_column(tmp_path):
    spec = {**TEXT, "column": "review", "source_columns": ["review", "label"]}
    path = tmp_path / "in.jsonl"
    path.write_text('{"review": "nice"}\n{"review": "meh", "label": "neg"}\n')
    assert read(path, spec) == (["nice", "meh"], None)
    with pytest.raises(DataError, match=r"no text column 'review' \(columns: text\)"):
        read_records(pd.DataFrame({"text": ["x"]}), spec)


def test_headerless_files_with_the_source_columns(tmp_path):
    tsv = tmp_path / "in.tsv"
    tsv.write_text('spam\tFree "prize", call now\nham\tsee you at 5\n')
    assert read(tsv) == (['Free "prize", call now', "see you at 5"], None)
    csv = tmp_path / "in.csv"
    csv.write_text("spam,win a prize\nham,hello there\n")
    assert read(csv) == (["win a prize", "hello there"], None)
    single = tmp_path / "texts.csv"
    single.write_text("first text\nsecond text\n")  # the text column alone
    assert read(single) == (["first text", "second text"], None)


def test_dataframe_dicts_and_records():
    frame = pd.DataFrame({"label": ["a", "b"], "text": ["x", None]}, index=[3, 4])
    assert read(frame) == (["x", ""], None)
    assert read({"text": "one record"}) == (["one record"], None)
    assert read({"text": ["column", "of texts"]}) == (["column", "of texts"], None)
    records = [{"text": "first", "label": "a"}, {"text": "second"}, {"label": "b"}]
    assert read(records) == (["first", "second", ""], None)


def test_bad_text_input(tmp_path):
    with pytest.raises(DataError, match="no records"):
        read_records([], TEXT)
    with pytest.raises(DataError, match=r"record 1: expected a mapping"):
        read_records([{"text": "ok"}, "not a record"], TEXT)
    with pytest.raises(DataError, match=r"record 0: expected a mapping"):
        read_records([tmp_path / "a.txt"], TEXT)  # paths are not texts
    with pytest.raises(DataError, match=r"nope\.csv: file not found"):
        read_records(str(tmp_path / "nope.csv"), TEXT)
    with pytest.raises(DataError, match="unknown kind"):
        read_records(["x"], {"kind": "audio"})

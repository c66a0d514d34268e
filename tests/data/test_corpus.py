"""Corpora for language modelling: reading text, prompt/completion pairs, contiguous splits."""

from __future__ import annotations

import pandas as pd
import pytest

from ladder.data.corpus import read_corpus, read_prompt_completions, split_stream
from ladder.errors import DataError


def test_a_text_file_a_folder_and_a_table_column(tmp_path):
    (tmp_path / "one.txt").write_text("first document", encoding="utf-8")
    assert read_corpus(tmp_path / "one.txt") == ["first document"]
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "b.txt").write_text("bee", encoding="utf-8")
    (folder / "a.txt").write_text("ay", encoding="utf-8")
    (folder / "skip.md").write_text("not text data", encoding="utf-8")
    assert read_corpus(folder) == ["ay", "bee"]
    pd.DataFrame({"body": ["row one", None, "row three"]}).to_csv(tmp_path / "t.csv", index=False)
    assert read_corpus(tmp_path / "t.csv", "body") == ["row one", "", "row three"]


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda p: p / "missing.txt", "no such file or folder"),
        (lambda p: _write(p / "empty.txt", "  \n"), "the corpus is empty"),
        (lambda p: _write_bytes(p / "latin.txt", b"caf\xe9"), r"not UTF-8 text \(byte 3\)"),
    ],
)
def test_bad_corpora_are_named(tmp_path, setup, message):
    with pytest.raises(DataError, match=message):
        read_corpus(setup(tmp_path))


def test_a_table_needs_its_text_column(tmp_path):
    pd.DataFrame({"body": ["x"]}).to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(DataError, match="no text column 'text' \\(columns: body\\)"):
        read_corpus(tmp_path / "t.csv", "text")


def test_prompt_completion_pairs_and_the_line_of_a_missing_field(tmp_path):
    good = tmp_path / "pairs.jsonl"
    good.write_text(
        '{"prompt": "2+2=", "completion": "4"}\n\n{"prompt": "hi", "completion": "!"}\n'
    )
    assert [(p.prompt, p.completion) for p in read_prompt_completions(good)] == [
        ("2+2=", "4"),
        ("hi", "!"),
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c"}\n')
    with pytest.raises(DataError, match="line 2 has no string field 'completion'"):
        read_prompt_completions(bad)


def test_splits_are_contiguous_and_do_not_overlap():
    split = split_stream(1000, val=0.1, test=0.1, block_size=32)
    assert split.train == (0, 800) and split.val == (800, 900) and split.test == (900, 1000)


def test_a_corpus_shorter_than_one_block_per_split_is_refused():
    with pytest.raises(DataError, match="too short: 300 tokens leave 30 for the test split"):
        split_stream(300, val=0.1, test=0.1, block_size=64)


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def _write_bytes(path, data):
    path.write_bytes(data)
    return path


def test_the_builtin_corpus_is_pythons_help_text():
    documents = read_corpus("builtin:pydoc")
    assert len(documents) > 50 and sum(map(len, documents)) > 300_000
    assert any("assert_stmt" in doc or 'The "assert" statement' in doc for doc in documents)
    with pytest.raises(DataError, match="builtin:shakespeare: no such corpus"):
        read_corpus("builtin:shakespeare")

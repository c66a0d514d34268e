"""Seq2seq pairs: read from tables, aligned text files and builtin:numbers-en-fr; split with a
clean test split; described for data.json."""

from __future__ import annotations

import builtins
import json

import pandas as pd
import pytest

from ladder.data.pairs import PairSet, describe_pairs, read_pairs, split_pairs
from ladder.errors import DataError

PAIRS = [("one", "un"), ("two", "deux"), ("three", "trois"), ("four", "quatre")]


def write_table(path, rows, columns=("source", "target")):
    frame = pd.DataFrame(rows, columns=list(columns))
    if path.suffix == ".parquet":
        frame.to_parquet(path)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        frame.to_csv(path, index=False, sep="\t" if path.suffix == ".tsv" else ",")
    return path


def numbered(n: int, repeat: dict[int, int] | None = None) -> PairSet:
    """n distinct pairs, source i -> target i; `repeat` {i: k} gives source i k more times."""
    sources = [f"source {i}" for i in range(n)]
    targets = [f"target {i}" for i in range(n)]
    for i, k in (repeat or {}).items():
        sources += [f"source {i}"] * k
        targets += [f"another target {i}.{j}" for j in range(k)]
    return PairSet(sources, targets)


# ----------------------------------------------------------------------------- reading


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet"])
def test_every_table_format_reads_its_two_columns(tmp_path, suffix):
    path = write_table(tmp_path / f"pairs{suffix}", PAIRS)
    pairs = read_pairs(str(path))
    assert list(zip(pairs.sources, pairs.targets, strict=True)) == PAIRS
    assert pairs.dropped_empty == 0 and len(pairs) == 4


def test_other_column_names_and_an_explicit_format(tmp_path):
    path = write_table(tmp_path / "pairs.data", PAIRS, columns=("en", "fr"))
    pairs = read_pairs(str(path), source_column="en", target_column="fr", fmt="csv")
    assert pairs.targets == ["un", "deux", "trois", "quatre"]


def test_empty_sources_and_targets_are_dropped_and_counted(tmp_path):
    rows = [("one", "un"), ("  ", "deux"), ("three", None), ("four", " quatre ")]
    pairs = read_pairs(str(write_table(tmp_path / "pairs.jsonl", rows)))
    assert pairs.sources == ["one", "four"] and pairs.targets == ["un", "quatre"]
    assert pairs.dropped_empty == 2


def test_a_missing_column_is_named_with_the_tables_columns(tmp_path):
    path = write_table(tmp_path / "pairs.csv", PAIRS, columns=("source", "traget"))
    with pytest.raises(DataError, match=r"no column 'target'; did you mean 'traget'\? "
                       r"\(columns: source, traget\); set data.target_column"):  # fmt: skip
        read_pairs(str(path))
    with pytest.raises(DataError, match=r"no column 'english' \(columns: source, traget\)"):
        read_pairs(str(path), source_column="english")


def test_a_table_of_only_empty_pairs_is_an_error(tmp_path):
    path = write_table(tmp_path / "pairs.csv", [("a", ""), ("", "b")])
    with pytest.raises(DataError, match=r"no pairs: every one of its 2 sources or targets"):
        read_pairs(str(path))


def test_a_missing_file_and_an_unknown_suffix_are_errors(tmp_path):
    with pytest.raises(DataError, match=r"nowhere.csv: no such file"):
        read_pairs(str(tmp_path / "nowhere.csv"))
    text = tmp_path / "source.txt"
    text.write_text("one\n")
    with pytest.raises(DataError, match=r"unsupported file type '.txt'.*set data.target_file"):
        read_pairs(str(text))


def test_aligned_text_files_give_one_pair_per_line(tmp_path):
    (tmp_path / "en.txt").write_text("one\ntwo\n\nfour\r\n", encoding="utf-8")
    (tmp_path / "fr.txt").write_text("un\ndeux\ntrois\nquatre\n", encoding="utf-8")
    pairs = read_pairs(str(tmp_path / "en.txt"), target_file=str(tmp_path / "fr.txt"))
    assert pairs.sources == ["one", "two", "four"] and pairs.targets == ["un", "deux", "quatre"]
    assert pairs.dropped_empty == 1


def test_aligned_files_of_different_lengths_say_both_counts(tmp_path):
    (tmp_path / "en.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "fr.txt").write_text("un\ndeux\n")
    with pytest.raises(DataError, match=r"en.txt has 3 lines but .*fr.txt has 2; .* aligned"):
        read_pairs(str(tmp_path / "en.txt"), target_file=str(tmp_path / "fr.txt"))


def test_aligned_files_missing_or_not_utf8_are_errors(tmp_path):
    (tmp_path / "en.txt").write_bytes(b"caf\xe9\n")
    (tmp_path / "fr.txt").write_text("un\n")
    with pytest.raises(DataError, match=r"en.txt: not UTF-8 text"):
        read_pairs(str(tmp_path / "en.txt"), target_file=str(tmp_path / "fr.txt"))
    with pytest.raises(DataError, match=r"de.txt: no such file"):
        read_pairs(str(tmp_path / "fr.txt"), target_file=str(tmp_path / "de.txt"))


def test_builtin_numbers_are_english_words_to_french_words():
    pairs = read_pairs("builtin:numbers-en-fr:25")
    assert len(pairs) == 25 and pairs.dropped_empty == 0
    assert (pairs.sources[0], pairs.targets[0]) == ("zero", "zéro")
    assert (pairs.sources[21], pairs.targets[21]) == ("twenty-one", "vingt et un")
    assert len(read_pairs("builtin:numbers-en-fr")) == 5000


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("builtin:numbers-en-de", r"no such pair corpus; did you mean 'builtin:numbers-en-fr'"),
        ("builtin:numbers-en-fr:0", r"N must be a whole number of pairs >= 1, got '0'"),
        ("builtin:numbers-en-fr:many", r"N must be a whole number .* got 'many'"),
    ],
)
def test_bad_builtin_names_are_errors(source, message):
    with pytest.raises(DataError, match=message):
        read_pairs(source)


def test_builtin_numbers_without_num2words_say_how_to_install_it(monkeypatch):
    real_import = builtins.__import__

    def no_num2words(name, *args, **kwargs):
        if name == "num2words":
            raise ImportError("No module named 'num2words'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_num2words)
    with pytest.raises(DataError, match=r"pip install num2words"):
        read_pairs("builtin:numbers-en-fr:3")


# ----------------------------------------------------------------------------- splitting


def test_split_sizes_are_the_fractions_and_the_same_seed_gives_the_same_split():
    splits = split_pairs(numbered(100), val=0.1, test=0.2, seed=3)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (70, 10, 20)
    assert splits.moved_to_keep_test_clean == splits.moved_to_keep_val_clean == 0
    again = split_pairs(numbered(100), val=0.1, test=0.2, seed=3)
    other = split_pairs(numbered(100), val=0.1, test=0.2, seed=4)
    assert again.test.sources == splits.test.sources != other.test.sources
    everything = splits.train.sources + splits.val.sources + splits.test.sources
    assert sorted(everything) == sorted(numbered(100).sources)
    for part in (splits.train, splits.val, splits.test):  # pairs stay aligned
        pairs = zip(part.sources, part.targets, strict=True)
        assert all(t == s.replace("source", "target") for s, t in pairs)


def test_no_test_source_occurs_in_training_or_validation():
    pairs = numbered(60, repeat={i: 3 for i in range(0, 60, 4)})  # 15 sources 4 times each
    splits = split_pairs(pairs, val=0.2, test=0.2, seed=0)
    test_sources = set(splits.test.sources)
    assert not test_sources & set(splits.train.sources)
    assert not test_sources & set(splits.val.sources)
    assert not set(splits.val.sources) & set(splits.train.sources)
    assert splits.moved_to_keep_test_clean > 0 and splits.moved_to_keep_val_clean > 0
    assert len(splits.train) + len(splits.val) + len(splits.test) == len(pairs)
    # the moved pairs are exactly the growth of the test split beyond its share
    assert len(splits.test) == round(0.2 * len(pairs)) + splits.moved_to_keep_test_clean


def test_no_validation_split_when_val_is_zero():
    splits = split_pairs(numbered(10), val=0, test=0.3, seed=0)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 0, 3)
    assert [name for name, _ in splits.items()] == ["train", "test"]


@pytest.mark.parametrize(("val", "test"), [(0.5, 0.5), (-0.1, 0.2), (0.1, 0.0), (0.1, 1.0)])
def test_fractions_that_leave_no_training_pairs_are_errors(val, test):
    with pytest.raises(DataError, match=r"data.split: val .* and test .* must leave training"):
        split_pairs(numbered(10), val=val, test=test, seed=0)


def test_too_few_pairs_or_too_few_distinct_sources_are_errors():
    with pytest.raises(DataError, match=r"2 pairs are too few to split"):
        split_pairs(numbered(2), val=0.1, test=0.2, seed=0)
    same_source = PairSet(["hello"] * 10, [f"t{i}" for i in range(10)])
    with pytest.raises(
        DataError, match=r"the training split is empty .*\(1 distinct sources in 10"
    ):
        split_pairs(same_source, val=0.1, test=0.2, seed=0)


# ----------------------------------------------------------------------------- data.json


def test_description_counts_lengths_and_fingerprint():
    pairs = PairSet(["ab", "abcd", "a", "abc", "xyz"], ["1", "22", "333", "4", "55"], 2)
    splits = split_pairs(pairs, val=0.2, test=0.2, seed=1)
    info = describe_pairs(splits, "pairs.csv")
    assert info["source"] == "pairs.csv" and info["task"] == "seq2seq"
    assert info["examples"] == {"train": 3, "val": 1, "test": 1}
    assert info["dropped_empty"] == 2 and info["moved_to_keep_test_clean"] == 0
    train = splits.train
    assert info["characters"]["train"] == {
        "source_mean": round(sum(map(len, train.sources)) / 3, 2),
        "source_max": max(map(len, train.sources)),
        "target_mean": round(sum(map(len, train.targets)) / 3, 2),
        "target_max": max(map(len, train.targets)),
    }
    assert len(info["sha256"]) == 64
    assert describe_pairs(split_pairs(pairs, 0.2, 0.2, 1), "x")["sha256"] == info["sha256"]
    assert describe_pairs(split_pairs(pairs, 0.2, 0.2, 2), "x")["sha256"] != info["sha256"]
    json.dumps(info)  # data.json is plain JSON

"""Corpus splits of a language-model run: contiguous parts cut at line ends, whole examples,
test segments and the data.json description."""

from __future__ import annotations

import pytest

from ladder.data.corpus import PromptCompletion
from ladder.data.lm_splits import (
    EXAMPLE_END,
    Example,
    describe_corpus,
    scoring_segments,
    split_examples,
    split_text,
)
from ladder.errors import DataError

LINES = [f"line number {i} of the corpus" for i in range(100)]


def test_text_parts_are_contiguous_cut_at_line_ends_and_cover_the_corpus():
    splits = split_text(["\n".join(LINES)], val=0.1, test=0.2)
    train, val, test = (part[0].text for part in (splits.train, splits.val, splits.test))
    assert train + val + test == "\n".join(LINES)
    assert train.endswith("\n") and val.endswith("\n")
    total = len(train + val + test)
    assert abs(len(test) / total - 0.2) < 0.02 and abs(len(val) / total - 0.1) < 0.02
    assert splits.kind == "text" and all(not ex.prompt for _, p in splits.items() for ex in p)


def test_documents_are_joined_and_no_validation_part_when_val_is_zero():
    splits = split_text(["first document\nhere", "second\nmore text\n" * 20], val=0, test=0.3)
    assert splits.val == []
    assert "first document" in splits.train[0].text
    assert [name for name, _ in splits.items()] == ["train", "test"]


def test_a_corpus_too_short_to_split_names_the_empty_part():
    with pytest.raises(DataError, match=r"its validation part .* holds too little text"):
        split_text(["only one line"], val=0.1, test=0.001)


def test_examples_split_whole_in_order_and_learn_the_end_marker():
    pairs = [PromptCompletion(f"Q{i}: ", f"A{i}") for i in range(10)]
    splits = split_examples(pairs, val=0.2, test=0.2)
    assert [ex.prompt for ex in splits.train] == [f"Q{i}: " for i in range(6)]
    assert [ex.prompt for ex in splits.val] == ["Q6: ", "Q7: "]
    assert splits.test[-1] == Example("Q9: ", "A9" + EXAMPLE_END)
    assert splits.texts("test") == ["Q8: A8" + EXAMPLE_END, "Q9: A9" + EXAMPLE_END]


def test_too_few_examples_is_a_data_error():
    with pytest.raises(DataError, match="2 prompt/completion examples are too few"):
        split_examples([PromptCompletion("a", "b")] * 2, val=0.3, test=0.3)


def test_test_segments_cover_the_test_text_at_line_ends():
    text = "\n".join(LINES) + "\n"
    segments = scoring_segments([Example("", text)], target=10)
    assert "".join(seg.text for seg in segments) == text
    assert 8 <= len(segments) <= 12
    assert all(seg.text.endswith("\n") for seg in segments)
    examples = [Example("p", "x"), Example("q", "y")]
    assert scoring_segments(examples) == examples  # examples stay whole


def test_the_fingerprint_follows_the_text():
    a = describe_corpus(split_text(["\n".join(LINES)], 0.1, 0.2), "a.txt")
    b = describe_corpus(split_text(["\n".join(LINES[:-1])], 0.1, 0.2), "a.txt")
    assert a["sha256"] != b["sha256"]
    assert a["task"] == "generation" and sum(a["bytes"].values()) == len("\n".join(LINES))

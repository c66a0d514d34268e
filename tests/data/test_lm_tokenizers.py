"""Language-model tokenizers: characters and byte-level BPE, fitted on training text."""

from __future__ import annotations

import json

import pytest

from ladder.data.lm_tokenizers import UNKNOWN, tokenizer_from_json, train_tokenizer

TEXT = "the cat sat on the mat. the cat ate the rat. " * 20


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_round_trip_and_json(kind):
    tokenizer = train_tokenizer(kind, [TEXT], vocab_size=300)
    ids = tokenizer.encode("the rat sat.")
    assert tokenizer.decode(ids) == "the rat sat."
    assert ids.max() < tokenizer.vocab_size
    again = tokenizer_from_json(json.loads(json.dumps(tokenizer.to_json())))
    assert again.encode("the rat sat.").tolist() == ids.tolist()


def test_characters_never_seen_become_the_unknown_id():
    tokenizer = train_tokenizer("char", ["abc"])
    assert tokenizer.encode("abz").tolist() == [1, 2, 0]
    assert tokenizer.decode([0]) == UNKNOWN


def test_byte_bpe_learns_merges_and_encodes_anything():
    tokenizer = train_tokenizer("bpe", [TEXT], vocab_size=300)
    assert len(tokenizer.encode("the cat")) < len("the cat")  # merged, not one id per byte
    assert tokenizer.decode(tokenizer.encode("naïve 😀")) == "naïve 😀"  # unseen: bytes


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="vocab_size: byte-level BPE needs at least 257"):
        train_tokenizer("bpe", [TEXT], vocab_size=100)
    with pytest.raises(ValueError, match="tokenizer: expected char or bpe"):
        train_tokenizer("words", [TEXT])
    with pytest.raises(ValueError, match="not a char, bpe or pretrained tokenizer"):
        tokenizer_from_json({"kind": "char", "characters": ["ab"]})

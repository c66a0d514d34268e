"""Tokenizers: training each kind, encoding to padded int64 ids, pretrained and saved ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from ladder.data.tokenize import (
    SPECIAL_TOKENS,
    encode,
    load_pretrained_tokenizer,
    pad_id_of,
    tokenizer_from_json,
    train_tokenizer,
)
from ladder.errors import DataError, LadderError

TEXTS = [
    "the cat sat on the mat",
    "The dog ran after the cat",
    "a bird flew over the house",
    "the cat and the dog",
]
KINDS = ["wordpiece", "bpe", "word"]


def real_lengths(ids: np.ndarray, pad_id: int = 0) -> list[int]:
    """Tokens before the first padding position of each row."""
    return [int(np.argmax(row == pad_id)) if (row == pad_id).any() else len(row) for row in ids]


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_trains_with_pad_id_zero_and_cls_first(kind):
    tokenizer = train_tokenizer(TEXTS, kind, vocab_size=200)
    for token_id, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.token_to_id(token) == token_id  # [PAD] is 0, specials in order
    assert pad_id_of(tokenizer) == 0
    cls_id = tokenizer.token_to_id("[CLS]")
    texts = [*TEXTS, ""]
    ids = encode(tokenizer, texts, max_length=32, pad_id=0)
    assert ids.dtype == np.int64 and ids.shape[0] == len(texts)
    assert (ids[:, 0] == cls_id).all()  # even the empty text has one real token
    lengths = real_lengths(ids)
    assert lengths[-1] == 1
    assert ids.shape[1] == max(lengths)  # L is the longest row, not max_length
    assert all(n > 1 for n in lengths[:-1])
    for row, n in zip(ids, lengths, strict=True):
        assert (row[n:] == 0).all() and (row[:n] != 0).all()
    # what the tokenizer knows it does not map to [UNK]
    unk = tokenizer.token_to_id("[UNK]")
    assert unk not in ids[0]


def test_right_padding_uses_the_given_pad_id():
    tokenizer = train_tokenizer(TEXTS, "word", vocab_size=200)
    ids = encode(tokenizer, ["the cat sat", "the"], max_length=16, pad_id=7)
    # word-level: [CLS] + one id per word
    assert ids.shape == (2, 4)
    assert ids[1, 2:].tolist() == [7, 7] and 7 not in ids[0]
    assert ids[1, :2].tolist() == ids[0, :2].tolist()  # [CLS] the


@pytest.mark.parametrize("kind", KINDS)
def test_truncation_counts_the_special_token(kind):
    tokenizer = train_tokenizer(TEXTS, kind, vocab_size=200)
    ids = encode(tokenizer, ["the cat sat on the mat " * 10, "cat"], max_length=5, pad_id=0)
    assert ids.shape == (2, 5)
    assert ids[0, 0] == tokenizer.token_to_id("[CLS]") and (ids[0] != 0).all()
    assert ids[1, 2:].tolist() == [0, 0, 0]


def test_lowercase_on_and_off():
    lower = train_tokenizer(["The Cat", "the dog"], "word", vocab_size=50, lowercase=True)
    assert lower.encode("THE cat").ids == lower.encode("the CAT").ids
    assert lower.token_to_id("[UNK]") not in lower.encode("THE CAT").ids
    cased = train_tokenizer(["The Cat", "the dog"], "word", vocab_size=50, lowercase=False)
    assert cased.token_to_id("The") is not None and cased.token_to_id("the") is not None
    assert cased.token_to_id("The") != cased.token_to_id("the")
    assert cased.encode("THE").ids[1] == cased.token_to_id("[UNK]")


def test_min_frequency_drops_rare_words():
    texts = ["common word", "common rare", "common word"]
    kept = train_tokenizer(texts, "word", vocab_size=50, min_frequency=2)
    assert kept.token_to_id("common") is not None and kept.token_to_id("word") is not None
    assert kept.token_to_id("rare") is None
    assert kept.encode("rare").ids[1] == kept.token_to_id("[UNK]")
    assert train_tokenizer(texts, "word", vocab_size=50).token_to_id("rare") is not None


def test_empty_input_list_and_non_strings():
    tokenizer = train_tokenizer(TEXTS, "word", vocab_size=50)
    empty = encode(tokenizer, [], max_length=8, pad_id=0)
    assert empty.shape == (0, 1) and empty.dtype == np.int64
    with pytest.raises(DataError, match="text input must be strings"):
        encode(tokenizer, ["ok", None], max_length=8, pad_id=0)


@pytest.mark.parametrize("kind", KINDS)
def test_saved_json_encodes_identically(kind):
    tokenizer = train_tokenizer(TEXTS, kind, vocab_size=200)
    again = tokenizer_from_json(tokenizer.to_str())
    texts = [*TEXTS, "", "an unseen zebra!"]
    np.testing.assert_array_equal(encode(again, texts, 16, 0), encode(tokenizer, texts, 16, 0))
    assert pad_id_of(again) == 0


def test_pad_id_of_other_tokenizers():
    from tokenizers import Tokenizer, models

    vocab = {"<unk>": 0, "<pad>": 1, "x": 2}
    roberta_like = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    assert pad_id_of(roberta_like) == 1
    roberta_like.enable_padding(pad_id=2, pad_token="x")
    assert pad_id_of(roberta_like) == 2  # the padding setting wins
    no_pad = Tokenizer(models.WordLevel({"<unk>": 0, "x": 1}, unk_token="<unk>"))
    assert pad_id_of(no_pad) == 0


def test_minilm_tokenizer(minilm_path):
    tokenizer = load_pretrained_tokenizer(minilm_path)
    assert pad_id_of(tokenizer) == 0
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    ids = encode(tokenizer, ["Hello world", "", "a much longer sentence " * 20], 6, 0)
    assert ids.shape == (3, 6) and ids.dtype == np.int64
    assert (ids[:, 0] == cls_id).all()
    assert ids[0].tolist()[3] == sep_id and ids[0, 4:].tolist() == [0, 0]
    assert ids[1, :2].tolist() == [cls_id, sep_id]
    assert ids[2, -1] == sep_id  # truncated, [SEP] kept within max_length
    # its own padding setting (to 128) does not leak into encode
    assert encode(tokenizer, ["hi"], 128, 0).shape == (1, 3)


def test_folder_without_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(LadderError, match="no tokenizer") as info:
        load_pretrained_tokenizer(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_corrupt_tokenizer_json(tmp_path, minilm_path):
    shutil.copy(minilm_path / "vocab.txt", tmp_path / "vocab.txt")
    (tmp_path / "tokenizer.json").write_text('{"version": "1.0", "model": ')
    with pytest.raises(LadderError, match="not a readable tokenizer file") as info:
        load_pretrained_tokenizer(tmp_path)
    assert str(Path(tmp_path) / "tokenizer.json") in str(info.value)


def test_vocabulary_files_without_tokenizer_json(tmp_path, minilm_path):
    for name in ("config.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm_path / name, tmp_path / name)
    built = load_pretrained_tokenizer(tmp_path)  # transformers builds the fast tokenizer
    original = load_pretrained_tokenizer(minilm_path)
    texts = ["Hello world", "Tokenizers, built twice!"]
    np.testing.assert_array_equal(encode(built, texts, 16, 0), encode(original, texts, 16, 0))

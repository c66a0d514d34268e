"""Text preprocessors: as_texts, raw strings, token ids, and their preprocess.json round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ladder.config import TextConfig
from ladder.data import Dataset, fit_preprocessor, preprocessor_from_json
from ladder.data.text import TOKENIZER_FILE, RawTextPreprocessor, TokenPreprocessor, as_texts
from ladder.errors import ArtifactError, DataError

TRAIN = np.array(
    ["a good film", "a bad film", "good acting and a good plot", "bad plot", ""], dtype=object
)
TEXT = TextConfig(tokenizer="word", vocab_size=100, max_length=6)


def fitted(cfg: TextConfig = TEXT, texts: np.ndarray = TRAIN) -> TokenPreprocessor:
    return TokenPreprocessor.fit(texts, cfg, "review", "label", ["review", "label"])


def save(pre: TokenPreprocessor | RawTextPreprocessor, folder: Path) -> dict:
    """What an artifact holds: preprocess.json (returned, through JSON) and the extra files."""
    for name, content in pre.extra_files().items():
        (folder / name).write_text(content, encoding="utf-8")
    return json.loads(json.dumps(pre.to_json()))


# ----------------------------------------------------------------------------- as_texts


def test_as_texts_missing_values_and_numbers():
    out = as_texts([None, np.nan, "x", 3, 2.5, pd.NA, ""])
    assert out.dtype == object and out.ndim == 1
    assert out.tolist() == ["", "", "x", "3", "2.5", "", ""]
    assert all(isinstance(t, str) for t in out)


def test_as_texts_from_arrays_series_and_frames():
    assert as_texts(np.array(["a", "b"])).tolist() == ["a", "b"]
    assert as_texts(pd.Series(["a", None])).tolist() == ["a", ""]
    frame = pd.DataFrame({"id": [1, 2], "body": ["hi", None]})
    assert as_texts(frame, "body").tolist() == ["hi", ""]
    assert as_texts([]).shape == (0,)


def test_as_texts_missing_column_lists_the_columns():
    frame = pd.DataFrame({"id": [1], "body": ["hi"]})
    with pytest.raises(DataError, match=r"no text column 'text' \(columns: id, body\)"):
        as_texts(frame, "text")
    with pytest.raises(DataError, match="no text column"):
        as_texts(frame)


def test_as_texts_rejects_two_dimensional_input():
    with pytest.raises(DataError, match=r"one text per row, got shape \(2, 2\)"):
        as_texts([["a", "b"], ["c", "d"]])
    with pytest.raises(DataError, match=r"got shape \(\)"):
        as_texts("a single string is not a list of texts")


# ----------------------------------------------------------------------------- raw


def test_raw_preprocessor_round_trip(tmp_path):
    pre = RawTextPreprocessor("review", "label", ["review", "label"])
    assert pre.output_shape == ()
    assert pre.transform(pd.DataFrame({"review": ["x", None]})).tolist() == ["x", ""]
    assert pre.transform(["y", 1]).tolist() == ["y", "1"]
    assert pre.extra_files() == {}
    d = save(pre, tmp_path)
    assert d == {
        "kind": "text",
        "column": "review",
        "target": "label",
        "source_columns": ["review", "label"],
        "encoding": "raw",
    }
    again = preprocessor_from_json(d, tmp_path)
    assert isinstance(again, RawTextPreprocessor) and not isinstance(again, TokenPreprocessor)
    assert again.input_spec() == pre.input_spec()


def test_fit_preprocessor_picks_raw_or_tokens():
    train = Dataset(
        "text", TRAIN, np.zeros(len(TRAIN), dtype=np.int64), ["a"], text_column="review"
    )
    raw = fit_preprocessor(train)
    assert type(raw) is RawTextPreprocessor and raw.column == "review"
    tokens = fit_preprocessor(train, text=TEXT)
    assert isinstance(tokens, TokenPreprocessor) and tokens.column == "review"


# ----------------------------------------------------------------------------- tokens


def test_token_preprocessor_fit_and_transform():
    pre = fitted()
    assert pre.pad_id == 0 and pre.max_length == 6
    assert pre.output_shape == (6, pre.vocab_size)
    assert pre.vocab_size == pre.tokenizer.get_vocab_size(with_added_tokens=True)
    ids = pre.transform(pd.DataFrame({"review": ["a good film", None], "label": [1, 0]}))
    assert ids.dtype == np.int64 and ids.shape == (2, 4)  # [CLS] a good film
    assert ids[1, 0] == pre.tokenizer.token_to_id("[CLS]") and ids[1, 1:].tolist() == [0, 0, 0]
    long = pre.transform(["good " * 50])
    assert long.shape == (1, 6) and (long != 0).all()  # truncated to max_length
    with pytest.raises(DataError, match="no text column 'review'"):
        pre.transform(pd.DataFrame({"text": ["x"]}))


def test_token_preprocessor_json(tmp_path):
    pre = fitted()
    d = save(pre, tmp_path)
    assert d["kind"] == "text" and d["encoding"] == "tokens"
    assert d["tokenizer"] == "word" and d["tokenizer_file"] == TOKENIZER_FILE
    assert d["max_length"] == 6 and d["pad_id"] == 0 and d["vocab_size"] == pre.vocab_size
    assert d["column"] == "review" and d["target"] == "label"
    assert d["source_columns"] == ["review", "label"]
    assert list(pre.extra_files()) == [TOKENIZER_FILE]
    assert (tmp_path / TOKENIZER_FILE).is_file()


@pytest.mark.parametrize("kind", ["wordpiece", "bpe", "word"])
def test_token_preprocessor_round_trip_gives_identical_ids(tmp_path, kind):
    pre = fitted(TextConfig(tokenizer=kind, vocab_size=80, max_length=8))
    again = preprocessor_from_json(save(pre, tmp_path), tmp_path)
    assert isinstance(again, TokenPreprocessor)
    assert again.output_shape == pre.output_shape and again.input_spec() == pre.input_spec()
    texts = [*TRAIN, "unseen words, and punctuation!", "good " * 30]
    np.testing.assert_array_equal(again.transform(texts), pre.transform(texts))


def test_pretrained_tokenizer_round_trip(tmp_path, minilm_path):
    cfg = TextConfig(tokenizer="pretrained", max_length=8)
    with pytest.raises(ValueError, match="needs the model folder"):
        TokenPreprocessor.fit(TRAIN, cfg, "text")
    pre = TokenPreprocessor.fit(TRAIN, cfg, "text", pretrained_folder=minilm_path)
    assert pre.pad_id == 0 and pre.vocab_size > 30000
    ids = pre.transform(["Hello world"])
    assert ids[0, 0] == pre.tokenizer.token_to_id("[CLS]")
    assert ids[0, -1] == pre.tokenizer.token_to_id("[SEP]")
    again = preprocessor_from_json(save(pre, tmp_path), tmp_path)
    np.testing.assert_array_equal(again.transform(TRAIN), pre.transform(TRAIN))


def test_other_tokenizer_json_is_rejected(tmp_path):
    pre = fitted()
    d = save(pre, tmp_path)
    bigger = [*TRAIN, "completely different words make another vocabulary"]
    (tmp_path / TOKENIZER_FILE).write_text(fitted(texts=np.array(bigger)).tokenizer.to_str())
    with pytest.raises(ArtifactError, match=r"does not match preprocess\.json"):
        preprocessor_from_json(d, tmp_path)


def test_missing_or_broken_tokenizer_file(tmp_path):
    d = save(fitted(), tmp_path)
    with pytest.raises(ArtifactError, match=r"needs its tokenizer\.json"):
        preprocessor_from_json(d)
    (tmp_path / TOKENIZER_FILE).write_text("{broken")
    with pytest.raises(ArtifactError, match="not a valid tokenizer file"):
        preprocessor_from_json(d, tmp_path)
    (tmp_path / TOKENIZER_FILE).unlink()
    with pytest.raises(ArtifactError, match="cannot read the tokenizer") as info:
        preprocessor_from_json(d, tmp_path)
    assert TOKENIZER_FILE in str(info.value)


def test_malformed_preprocess_json(tmp_path):
    d = save(fitted(), tmp_path)
    del d["max_length"]
    with pytest.raises(ArtifactError, match="malformed text preprocessor"):
        preprocessor_from_json(d, tmp_path)
    with pytest.raises(ArtifactError, match="unknown preprocessor kind"):
        preprocessor_from_json({**d, "encoding": "bytes"}, tmp_path)

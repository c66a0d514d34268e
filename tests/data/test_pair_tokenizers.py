"""Seq2seq tokenizers: trained char/BPE sides with PAD/BOS/EOS reserved, and a pretrained
model folder's own tokenizer with the model's special ids."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from tiny_seq2seq import make_tiny_bart, make_tiny_t5

from ladder.data.lm_tokenizers import UNKNOWN
from ladder.data.pair_tokenizers import (
    PairTokenizer,
    PretrainedSideTokenizer,
    SideTokenizer,
    pair_tokenizer_from_json,
    pretrained_ids,
)
from ladder.data.special_ids import BOS_ID, EOS_ID, N_SPECIAL, PAD_ID
from ladder.errors import DataError

SOURCES = ["twenty one", "forty two", "three hundred", "seven"] * 5
TARGETS = ["21", "42", "300", "7"] * 5


def roundtrip(pair: PairTokenizer) -> PairTokenizer:
    return pair_tokenizer_from_json(json.loads(json.dumps(pair.to_json())))


@pytest.fixture(scope="module")
def t5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_t5(tmp_path_factory.mktemp("t5"), SOURCES + TARGETS)


# ----------------------------------------------------------------------------- trained


@pytest.mark.parametrize("kind", ["char", "bpe"])
@pytest.mark.parametrize("shared", [False, True])
def test_trained_round_trip_and_json(kind: str, shared: bool) -> None:
    pair = PairTokenizer.train(kind, SOURCES, TARGETS, vocab_size=300, shared=shared)
    assert (pair.kind, pair.shared) == (kind, shared)
    assert (pair.source is pair.target) == shared
    for side, text in ((pair.source, "forty one"), (pair.target, "42")):
        assert (side.pad_id, side.bos_id, side.eos_id) == (PAD_ID, BOS_ID, EOS_ID) == (0, 1, 2)
        ids = side.encode(text)
        assert ids.dtype == np.int64 and ids.min() >= N_SPECIAL and ids.max() < side.vocab_size
        assert side.decode(ids) == text
    again = roundtrip(pair)
    assert (again.kind, again.shared, again.source is again.target) == (kind, shared, shared)
    for text in ("seven hundred", "300"):
        assert again.source.encode(text).tolist() == pair.source.encode(text).tolist()
        assert again.target.encode(text).tolist() == pair.target.encode(text).tolist()
    assert again.target.vocab_size == pair.target.vocab_size


def test_decode_skips_specials_and_stops_at_eos() -> None:
    side = PairTokenizer.train("char", SOURCES, TARGETS).target
    ids = side.encode("42").tolist()
    assert side.decode([BOS_ID, *ids, EOS_ID, *side.encode("7").tolist(), PAD_ID]) == "42"
    assert side.decode(np.array([BOS_ID, ids[0], PAD_ID, ids[1]])) == "42"
    assert side.decode(iter([EOS_ID, *ids])) == ""


def test_unseen_characters() -> None:
    pair = PairTokenizer.train("char", SOURCES, TARGETS)
    ids = pair.target.encode("4x")  # "x" never appears in a target
    assert ids.tolist() == [pair.target.encode("4")[0], N_SPECIAL]  # the char UNKNOWN, shifted
    assert pair.target.decode(ids) == "4" + UNKNOWN
    bpe = PairTokenizer.train("bpe", SOURCES, TARGETS, vocab_size=300)
    assert bpe.target.decode(bpe.target.encode("naïve 😀")) == "naïve 😀"  # bytes: no unknowns


def test_shared_and_separate_vocab_sizes() -> None:
    separate = PairTokenizer.train("char", SOURCES, TARGETS)
    shared = PairTokenizer.train("char", SOURCES, TARGETS, shared=True)
    source_chars, target_chars = set("".join(SOURCES)), set("".join(TARGETS))
    # + 1: the char tokenizer's UNKNOWN
    assert separate.source.vocab_size == N_SPECIAL + 1 + len(source_chars)
    assert separate.target.vocab_size == N_SPECIAL + 1 + len(target_chars)
    assert shared.target.vocab_size == N_SPECIAL + 1 + len(source_chars | target_chars)
    assert shared.source.vocab_size == shared.target.vocab_size
    assert shared.source.encode("42").tolist() == shared.target.encode("42").tolist()
    assert separate.source.encode("4")[0] == separate.source.encode("x")[0]  # unseen there
    assert "target" not in shared.to_json() and "target" in separate.to_json()


def test_bad_kind_and_vocab_size() -> None:
    with pytest.raises(ValueError, match="tokenizer: expected char or bpe"):
        PairTokenizer.train("words", SOURCES, TARGETS)
    with pytest.raises(ValueError, match="at least 257"):
        PairTokenizer.train("bpe", SOURCES, TARGETS, vocab_size=100)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "expected a JSON object"),
        ({"kind": "word", "shared": True, "source": {}}, "kind must be char, bpe or pretrained"),
        ({"kind": "char", "shared": "yes", "source": {}}, "shared must be true or false"),
        ({"kind": "char", "shared": True}, "source is not a char tokenizer"),
        ({"kind": "char", "shared": True, "source": {"kind": "bpe"}}, "source is not a char"),
        ({"kind": "char", "shared": False, "source": {"kind": "char", "characters": ["a"]}},
         "target is not a char tokenizer"),
        ({"kind": "char", "shared": True, "source": {"kind": "char", "characters": ["ab"]}},
         "not a char, bpe or pretrained tokenizer description"),
    ],
)  # fmt: skip
def test_bad_descriptions(data: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pair_tokenizer_from_json(data)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- pretrained


def test_pretrained_t5_folder(t5_folder: Path) -> None:
    config = json.loads((t5_folder / "config.json").read_text())
    pair = PairTokenizer.from_pretrained_folder(t5_folder)
    assert (pair.kind, pair.shared) == ("pretrained", True)
    assert isinstance(pair.source, PretrainedSideTokenizer)
    for side in (pair.source, pair.target):
        assert (side.pad_id, side.bos_id, side.eos_id) == (0, 0, 1)  # T5: start = pad
        assert side.vocab_size == config["vocab_size"]  # the model's rows, past the tokenizer's
    source, target = pair.source.encode("forty two"), pair.target.encode("forty two")
    assert source.tolist() == [*target.tolist(), 1]  # T5's tokenizer appends </s> to sources
    assert pair.target.decode(source) == "forty two"  # stops at </s>
    assert pair.target.decode([0, *target.tolist(), 1, *target.tolist()]) == "forty two"
    again = roundtrip(pair)
    assert again.kind == "pretrained" and again.source is not again.target
    assert again.source.encode("seven").tolist() == pair.source.encode("seven").tolist()
    assert again.target.encode("seven").tolist() == pair.target.encode("seven").tolist()
    assert again.target.vocab_size == pair.target.vocab_size


def test_pretrained_bart_folder(tmp_path: Path) -> None:
    pair = PairTokenizer.from_pretrained_folder(make_tiny_bart(tmp_path, SOURCES + TARGETS))
    side = pair.target
    assert (side.pad_id, side.bos_id, side.eos_id) == (1, 2, 2)  # BART starts from </s>
    source = pair.source.encode("seven")
    assert source[0] == 0 and source[-1] == 2  # <s> ... </s>
    assert source[1:-1].tolist() == side.encode("seven").tolist()
    assert side.decode(side.encode("naïve 7")) == "naïve 7"


def test_pretrained_folder_problems(t5_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no tokenizer"):
        PairTokenizer.from_pretrained_folder(tmp_path)
    shutil.copy(t5_folder / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(DataError, match=re.escape("no config.json")):
        PairTokenizer.from_pretrained_folder(tmp_path)
    config = json.loads((t5_folder / "config.json").read_text())
    del config["decoder_start_token_id"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(DataError, match=re.escape("no decoder_start_token_id in config.json")):
        PairTokenizer.from_pretrained_folder(tmp_path)
    (tmp_path / "generation_config.json").write_text('{"decoder_start_token_id": 0}')
    assert PairTokenizer.from_pretrained_folder(tmp_path).target.bos_id == 0
    (tmp_path / "config.json").write_text(json.dumps(config | {"vocab_size": 5}))
    with pytest.raises(DataError, match="more than the model's vocab_size of 5"):
        PairTokenizer.from_pretrained_folder(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(DataError, match=re.escape("config.json: cannot read it as JSON")):
        PairTokenizer.from_pretrained_folder(tmp_path)


def test_pretrained_ids_order_and_lists() -> None:
    settings = {"pad_token_id": 1, "decoder_start_token_id": None, "eos_token_id": [2, 3]}
    assert pretrained_ids(settings, {"decoder_start_token_id": 2}) == (1, 2, 2)
    with pytest.raises(ValueError, match=re.escape("no pad_token_id, eos_token_id in config.json")):
        pretrained_ids({"decoder_start_token_id": 0, "pad_token_id": None})


def test_pretrained_description_must_be_shared_and_complete(t5_folder: Path) -> None:
    data = PairTokenizer.from_pretrained_folder(t5_folder).to_json()
    with pytest.raises(ValueError, match="shared by both sides"):
        pair_tokenizer_from_json(data | {"shared": False})
    del data["source"]["eos_id"]
    with pytest.raises(ValueError, match="needs pad_id, bos_id, eos_id and vocab_size"):
        pair_tokenizer_from_json(data)


def test_side_tokenizer_wraps_an_lm_tokenizer() -> None:
    from ladder.data.lm_tokenizers import CharTokenizer

    side = SideTokenizer(CharTokenizer(["a", "b"]))
    assert side.kind == "char" and side.vocab_size == N_SPECIAL + 3
    assert side.encode("ba").tolist() == [N_SPECIAL + 2, N_SPECIAL + 1]
    assert side.to_json() == {"kind": "char", "characters": ["a", "b"]}


def test_a_cut_source_keeps_the_eos_a_pretrained_tokenizer_ends_it_with(t5_folder: Path) -> None:
    pair = PairTokenizer.from_pretrained_folder(t5_folder)
    ids = pair.source.encode(SOURCES[0] + " " + SOURCES[1])
    assert int(ids[-1]) == pair.source.eos_id and len(ids) > 4
    cut = pair.source.truncate(ids, 4)
    assert list(cut) == [*ids[:3], pair.source.eos_id]
    assert list(pair.source.truncate(ids, len(ids))) == list(ids)
    scratch = PairTokenizer.train("char", SOURCES, TARGETS)
    plain = scratch.source.encode("abcdef")
    assert list(scratch.source.truncate(plain, 2)) == list(plain[:2])

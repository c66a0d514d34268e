"""The tokenizers of a sequence-to-sequence task: one for the sources, one for the targets.

Trained from scratch (`char` or `bpe`), each side wraps a language-model tokenizer of
`lm_tokenizers` and reserves PAD, BOS and EOS (`special_ids`) before the inner tokenizer's ids;
the two sides may share one tokenizer fitted on both. A pretrained model's folder gives one
tokenizer for both sides with the model's own special ids.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ladder.data.lm_tokenizers import (
    ByteBPETokenizer,
    CharTokenizer,
    PretrainedTokenizer,
    tokenizer_from_json,
    train_tokenizer,
)
from ladder.data.special_ids import BOS_ID, EOS_ID, N_SPECIAL, PAD_ID
from ladder.errors import DataError, first_line

TRAINED_KINDS = ("char", "bpe")
PRETRAINED_IDS = ("pad_token_id", "decoder_start_token_id", "eos_token_id")


def _until_eos(ids: Iterable[int] | np.ndarray, eos_id: int) -> np.ndarray:
    """`ids` as int64, cut before the first `eos_id`."""
    if isinstance(ids, np.ndarray):
        flat = ids.astype(np.int64, copy=False).ravel()
    else:
        flat = np.fromiter((int(i) for i in ids), dtype=np.int64)
    ends = np.flatnonzero(flat == eos_id)
    return flat[: ends[0]] if ends.size else flat


class SideTokenizer:
    """A trained tokenizer's ids shifted by N_SPECIAL, after PAD, BOS and EOS."""

    pad_id, bos_id, eos_id = PAD_ID, BOS_ID, EOS_ID

    def __init__(self, inner: CharTokenizer | ByteBPETokenizer) -> None:
        self.inner = inner

    @property
    def kind(self) -> str:
        """char or bpe: what the inner tokenizer is."""
        return self.inner.kind

    @property
    def vocab_size(self) -> int:
        """Ids are 0 .. vocab_size - 1: the special ids, then the inner tokenizer's."""
        return self.inner.vocab_size + N_SPECIAL

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` (int64), without bos or eos."""
        return self.inner.encode(text) + N_SPECIAL

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of `ids` up to the first eos; pad and bos are left out."""
        ids = _until_eos(ids, EOS_ID)
        return self.inner.decode((ids[ids >= N_SPECIAL] - N_SPECIAL).tolist())

    def truncate(self, ids: Any, room: int) -> Any:
        """The first `room` ids."""
        return ids[:room]

    def to_json(self) -> dict[str, Any]:
        """The inner tokenizer's description (the special ids are fixed)."""
        return self.inner.to_json()


class PretrainedSideTokenizer:
    """A pretrained model's tokenizer with the model's own pad, decoder-start and eos ids.

    The source side encodes with the tokenizer's own special tokens, as the model saw its
    inputs in pretraining (the post-processor of tokenizer.json: T5 appends </s>, BART wraps
    the text in <s> ... </s>); the target side encodes plain text, the training batches add
    the decoder start and eos.
    """

    kind = "pretrained"

    def __init__(
        self,
        inner: PretrainedTokenizer,
        pad_id: int,
        bos_id: int,
        eos_id: int,
        vocab_size: int,
        add_special_tokens: bool,
    ) -> None:
        self.inner = inner
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self._vocab_size = vocab_size
        self.add_special_tokens = add_special_tokens

    @property
    def vocab_size(self) -> int:
        """The model's vocabulary (its embedding rows: may be more than the tokenizer's)."""
        return self._vocab_size

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` (int64), with the tokenizer's special tokens on the source side."""
        encoding = self.inner.tokenizer.encode(text, add_special_tokens=self.add_special_tokens)
        return np.asarray(encoding.ids, dtype=np.int64)

    def decode(self, ids: Iterable[int] | np.ndarray) -> str:
        """The text of `ids` up to the first eos; special tokens are left out."""
        return self.inner.decode(_until_eos(ids, self.eos_id).tolist())

    def truncate(self, ids: Any, room: int) -> Any:
        """The first `room` ids; a source the tokenizer ended with eos (T5, BART) keeps its
        eos as the last of them, as the model saw every input end in pretraining."""
        if len(ids) <= room or not self.add_special_tokens or int(ids[-1]) != self.eos_id:
            return ids[:room]
        return np.concatenate([np.asarray(ids[: room - 1]), np.asarray(ids[-1:])])

    def to_json(self) -> dict[str, Any]:
        """The tokenizer's description with the model's ids."""
        ids = {"pad_id": self.pad_id, "bos_id": self.bos_id, "eos_id": self.eos_id}
        return self.inner.to_json() | ids | {"vocab_size": self.vocab_size}


Side = SideTokenizer | PretrainedSideTokenizer


def pretrained_ids(*settings: Mapping[str, Any]) -> tuple[int, int, int]:
    """(pad, decoder start, eos) of a pretrained encoder-decoder, from its config and then its
    generation config (dicts, first one naming an id wins); ValueError naming what is missing.

    A list of eos ids (some generation configs) gives its first.
    """
    found: dict[str, int] = {}
    for name in PRETRAINED_IDS:
        for values in settings:
            value = values.get(name)
            if isinstance(value, list) and value:
                value = value[0]
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                found[name] = value
                break
    missing = [name for name in PRETRAINED_IDS if name not in found]
    if missing:
        raise ValueError(
            f"no {', '.join(missing)} in config.json or generation_config.json; ladder needs "
            "them to pad, start and end the targets"
        )
    return found["pad_token_id"], found["decoder_start_token_id"], found["eos_token_id"]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read it as JSON: {first_line(exc)}") from exc
    if not isinstance(data, dict):
        raise DataError(f"{path}: expected a JSON object")
    return data


def _pretrained_sides(
    inner: PretrainedTokenizer, ids: tuple[int, int, int], vocab_size: int
) -> tuple[PretrainedSideTokenizer, PretrainedSideTokenizer]:
    """The source side (with the tokenizer's special tokens) and the target side (without)."""
    pad_id, bos_id, eos_id = ids
    source, target = (
        PretrainedSideTokenizer(inner, pad_id, bos_id, eos_id, vocab_size, add_special_tokens=add)
        for add in (True, False)
    )
    return source, target


class PairTokenizer:
    """The source and target tokenizers of a seq2seq task; `shared`: one vocabulary for both
    (trained: the very same tokenizer object on both sides)."""

    def __init__(self, source: Side, target: Side, shared: bool) -> None:
        self.source = source
        self.target = target
        self.shared = shared

    @property
    def kind(self) -> str:
        """char, bpe or pretrained."""
        return self.target.kind

    @classmethod
    def train(
        cls,
        kind: str,
        sources: list[str],
        targets: list[str],
        vocab_size: int = 4096,
        shared: bool = False,
    ) -> PairTokenizer:
        """`char` or `bpe` tokenizers fitted on the training pairs: one on both sides when
        `shared`, else one per side. `vocab_size`: each BPE's own size (the 3 special ids come
        on top); ignored by `char`."""
        if shared:
            side = SideTokenizer(train_tokenizer(kind, [*sources, *targets], vocab_size))
            return cls(side, side, shared=True)
        source = SideTokenizer(train_tokenizer(kind, sources, vocab_size))
        target = SideTokenizer(train_tokenizer(kind, targets, vocab_size))
        return cls(source, target, shared=False)

    @classmethod
    def from_pretrained_folder(cls, folder: str | Path) -> PairTokenizer:
        """The tokenizer of a local encoder-decoder folder (tokenizer.json, config.json) for
        both sides; DataError naming the folder and what is missing."""
        folder = Path(folder)
        inner = PretrainedTokenizer.from_folder(folder)
        if not (folder / "config.json").is_file():
            raise DataError(f"{folder}: no config.json; give a folder written by save_pretrained")
        config = _read_json(folder / "config.json")
        generation = folder / "generation_config.json"
        settings = [config, _read_json(generation)] if generation.is_file() else [config]
        try:
            ids = pretrained_ids(*settings)
        except ValueError as exc:
            raise DataError(f"{folder}: {exc}") from exc
        vocab_size = config.get("vocab_size")
        if not isinstance(vocab_size, int) or vocab_size <= 0:
            raise DataError(f"{folder}/config.json: no vocab_size (a positive int)")
        if inner.vocab_size > vocab_size:
            raise DataError(
                f"{folder}: the tokenizer has {inner.vocab_size} tokens, more than the model's "
                f"vocab_size of {vocab_size}; the tokenizer files belong to another model"
            )
        return cls(*_pretrained_sides(inner, ids, vocab_size), shared=True)

    def to_json(self) -> dict[str, Any]:
        """What `pair_tokenizer_from_json` rebuilds it from (a shared tokenizer stored once)."""
        data = {"kind": self.kind, "shared": self.shared, "source": self.source.to_json()}
        if not self.shared:
            data["target"] = self.target.to_json()
        return data


def _side_from_json(data: Any, kind: str, where: str) -> dict[str, Any]:
    """`data` checked to be a side description of `kind`; ValueError naming `where`."""
    if not isinstance(data, dict) or data.get("kind") != kind:
        raise ValueError(f"pair tokenizer: {where} is not a {kind} tokenizer description")
    return data


def pair_tokenizer_from_json(data: dict[str, Any]) -> PairTokenizer:
    """The pair tokenizer `PairTokenizer.to_json` described; ValueError when it is not one."""
    if not isinstance(data, dict):
        raise ValueError("pair tokenizer: expected a JSON object")
    kind, shared = data.get("kind"), data.get("shared")
    if kind not in (*TRAINED_KINDS, "pretrained"):
        raise ValueError(f"pair tokenizer: kind must be char, bpe or pretrained, got {kind!r}")
    if not isinstance(shared, bool):
        raise ValueError("pair tokenizer: shared must be true or false")
    source = _side_from_json(data.get("source"), kind, "source")
    if kind == "pretrained":
        if not shared:
            raise ValueError("pair tokenizer: a pretrained tokenizer is shared by both sides")
        numbers = [source.get(k) for k in ("pad_id", "bos_id", "eos_id", "vocab_size")]
        if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in numbers):
            raise ValueError(
                "pair tokenizer: source needs pad_id, bos_id, eos_id and vocab_size (ints >= 0)"
            )
        inner = tokenizer_from_json(source)  # a PretrainedTokenizer: its kind is pretrained
        pad_id, bos_id, eos_id, vocab_size = numbers
        return PairTokenizer(
            *_pretrained_sides(inner, (pad_id, bos_id, eos_id), vocab_size), shared=True
        )
    source_side = SideTokenizer(tokenizer_from_json(source))
    if shared:
        return PairTokenizer(source_side, source_side, shared=True)
    target = _side_from_json(data.get("target"), kind, "target")
    return PairTokenizer(source_side, SideTokenizer(tokenizer_from_json(target)), shared=False)

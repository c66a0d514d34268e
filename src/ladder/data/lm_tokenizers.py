"""Tokenizers of language models, fitted on the training text only: characters, or byte-level
BPE trained with Hugging Face `tokenizers`. Both encode any text (unseen characters: the
character tokenizer's unknown id; byte-level BPE has no unknowns) and save as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers  # noqa: TID253

from ladder.errors import DataError

UNKNOWN = "\ufffd"  # the character tokenizer's stand-in for characters it never saw


class CharTokenizer:
    """One id per character of the training text, in code-point order; id 0 is UNKNOWN."""

    kind = "char"

    def __init__(self, characters: list[str]) -> None:
        self.characters = [UNKNOWN, *(c for c in characters if c != UNKNOWN)]
        self._ids = {c: i for i, c in enumerate(self.characters)}

    @classmethod
    def train(cls, texts: Iterable[str]) -> CharTokenizer:
        """The tokenizer of every character in `texts`."""
        return cls(sorted(set().union(*(set(t) for t in texts))))

    @property
    def vocab_size(self) -> int:
        """Ids are 0 .. vocab_size - 1."""
        return len(self.characters)

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text`'s characters (int64)."""
        ids = self._ids
        return np.fromiter((ids.get(c, 0) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (an unknown id decodes as UNKNOWN)."""
        return "".join(self.characters[i] for i in ids)

    def to_json(self) -> dict[str, Any]:
        """What `from_json` rebuilds it from."""
        return {"kind": self.kind, "characters": self.characters[1:]}


class ByteBPETokenizer:
    """Byte-level BPE (GPT-2 style): merges learned on the training text, any text encodable."""

    kind = "bpe"

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int) -> ByteBPETokenizer:
        """Byte-level BPE with up to `vocab_size` tokens (at least the 256 bytes) on `texts`."""
        if vocab_size < 257:
            raise ValueError(f"vocab_size: byte-level BPE needs at least 257, got {vocab_size}")
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        """Ids are 0 .. vocab_size - 1."""
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` (int64)."""
        return np.asarray(self.tokenizer.encode(text).ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (a cut inside a multi-byte character decodes as U+FFFD)."""
        return self.tokenizer.decode([int(i) for i in ids])

    def to_json(self) -> dict[str, Any]:
        """What `from_json` rebuilds it from."""
        return {"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())}


class PretrainedTokenizer(ByteBPETokenizer):
    """A pretrained model's own (fast) tokenizer, used without its special tokens: a language
    model's stream is plain text."""

    kind = "pretrained"

    @classmethod
    def from_folder(cls, folder: str | Path) -> PretrainedTokenizer:
        """The tokenizer of a local model folder (its tokenizer.json, else what transformers
        converts its other tokenizer files to); DataError naming the folder when it has none."""
        folder = Path(folder)
        file = folder / "tokenizer.json"
        if file.is_file():
            return cls(Tokenizer.from_file(str(file)))
        from transformers import AutoTokenizer

        try:
            loaded = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{folder}: no tokenizer (tokenizer.json, or vocab/merges files) in the model "
                "folder; add the model's tokenizer files"
            ) from exc
        backend = getattr(loaded, "backend_tokenizer", None)
        if backend is None:
            raise DataError(f"{folder}: the tokenizer is not a fast tokenizer; add tokenizer.json")
        return cls(backend)

    def encode(self, text: str) -> np.ndarray:
        """The ids of `text` (int64), without special tokens."""
        return np.asarray(self.tokenizer.encode(text, add_special_tokens=False).ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids`, special tokens left out."""
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)


LMTokenizer = CharTokenizer | ByteBPETokenizer | PretrainedTokenizer


def train_tokenizer(kind: str, texts: list[str], vocab_size: int = 4096) -> LMTokenizer:
    """A `char` or `bpe` tokenizer fitted on the training `texts`."""
    if kind == "char":
        return CharTokenizer.train(texts)
    if kind == "bpe":
        return ByteBPETokenizer.train(texts, vocab_size)
    raise ValueError(f"tokenizer: expected char or bpe, got {kind!r}")


def tokenizer_from_json(data: dict[str, Any]) -> LMTokenizer:
    """The tokenizer `to_json` described; ValueError when the description is not one."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "char" and isinstance(data.get("characters"), list):
        characters = data["characters"]
        if all(isinstance(c, str) and len(c) == 1 for c in characters):
            return CharTokenizer(characters)
    if kind in ("bpe", "pretrained") and isinstance(data.get("tokenizer"), dict):
        cls = ByteBPETokenizer if kind == "bpe" else PretrainedTokenizer
        return cls(Tokenizer.from_str(json.dumps(data["tokenizer"])))
    raise ValueError("not a char, bpe or pretrained tokenizer description")

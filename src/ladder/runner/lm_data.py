"""A language-model rung's data: the tokenizer fitted on the training text, each part of the
corpus written as a token file on disk (with a loss mask for prompt/completion examples), and
the test text as a stream of segments for scoring."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.config import ModelEntry
from ladder.data.lm_splits import CorpusSplits, Example, scoring_segments
from ladder.data.lm_tokenizers import LMTokenizer, PretrainedTokenizer, train_tokenizer
from ladder.data.token_windows import token_dtype
from ladder.errors import ConfigError
from ladder.io import atomic_write

CHUNK_CHARACTERS = 1 << 20  # text is tokenized a piece at a time: memory stays bounded


@dataclass(frozen=True)
class TokenFile:
    """A part of the corpus as token ids on disk; `mask` (uint8, same length) is 1 where a
    token is learned and scored (0: prompt tokens), or None when every token is."""

    path: Path
    mask: Path | None
    n_tokens: int
    vocab_size: int

    def tokens(self) -> np.ndarray:
        """The ids, mapped read-only from disk."""
        return np.memmap(self.path, dtype=token_dtype(self.vocab_size), mode="r")

    def loss_mask(self) -> np.ndarray | None:
        """The mask, mapped read-only from disk (None: every token counts)."""
        return None if self.mask is None else np.memmap(self.mask, dtype=np.uint8, mode="r")


@dataclass(frozen=True)
class TokenStream:
    """Test text as one token stream cut into segments: `starts[s]` is segment s's first
    token, `n_bytes[s]` its scored UTF-8 bytes; `mask` (None: all) marks scored tokens."""

    ids: np.ndarray
    starts: np.ndarray
    n_bytes: np.ndarray
    mask: np.ndarray | None

    @property
    def n_scored(self) -> int:
        """Tokens whose likelihood counts (every token after the first, prompts left out)."""
        if self.mask is None:
            return max(len(self.ids) - 1, 0)
        return int(self.mask[1:].sum())

    def per_segment(self, token_nats: np.ndarray) -> np.ndarray:
        """Nats per segment from the nats of each token after the first."""
        segment = np.searchsorted(self.starts, np.arange(1, len(self.ids)), side="right") - 1
        weights = token_nats if self.mask is None else token_nats * self.mask[1:]
        return np.bincount(segment, weights=weights, minlength=len(self.starts))


def entry_tokenizer(entry: ModelEntry, splits: CorpusSplits, base_dir: Path) -> LMTokenizer:
    """The tokenizer of a language-model entry: a pretrained model's own, or char / byte-level
    BPE fitted on the training text (text.tokenizer; wordpiece, the default, means char)."""
    path = getattr(entry.params, "path", None)
    if entry.type == "causal_lm" and path is not None:
        return PretrainedTokenizer.from_folder(path)
    kind = entry.text.tokenizer
    if kind == "pretrained":
        folder = Path(entry.text.tokenizer_path or "")
        local = base_dir / folder
        return PretrainedTokenizer.from_folder(local if local.exists() else folder)
    if kind == "word":
        raise ConfigError(
            [
                f"models.{entry.name}.text.tokenizer: word does not fit generation (it cannot "
                "spell unseen words); use char, bpe or pretrained"
            ]
        )
    kind = "bpe" if kind == "bpe" else "char"
    return train_tokenizer(kind, splits.texts("train"), entry.text.vocab_size)


def write_token_file(
    tokenizer: LMTokenizer, examples: list[Example], path: Path, with_mask: bool
) -> TokenFile:
    """Tokenize `examples` into `path` (and `path`.mask when `with_mask`), atomically."""
    vocab = tokenizer.vocab_size
    dtype = token_dtype(vocab)
    mask_path = path.with_suffix(".mask") if with_mask else None
    count = 0

    masks: list[np.ndarray] = []  # prompt/completion data: small enough to hold

    def write(tmp: Path) -> None:
        nonlocal count
        with tmp.open("wb") as out:
            for ids, scored in _encoded(tokenizer, examples):
                out.write(np.asarray(ids, dtype=dtype).tobytes())
                if mask_path is not None:
                    masks.append(np.full(len(ids), scored, dtype=np.uint8))
                count += len(ids)

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, write)
    if mask_path is not None:
        joined = np.concatenate(masks) if masks else np.zeros(0, np.uint8)
        atomic_write(mask_path, lambda tmp: joined.tofile(tmp))
    return TokenFile(path, mask_path, count, vocab)


def scoring_stream(tokenizer: LMTokenizer, examples: list[Example]) -> TokenStream:
    """The test examples as segments (`ladder.data.lm_splits.scoring_segments`), each tokenized on
    its own, joined into one stream."""
    segments = scoring_segments(examples)
    ids, mask, starts, n_bytes = [], [], [], []
    position = 0
    for segment in segments:
        starts.append(position)
        n_bytes.append(segment.n_bytes)
        for piece, scored in _encoded(tokenizer, [segment]):
            ids.append(np.asarray(piece, dtype=np.int64))
            mask.append(np.full(len(piece), scored, dtype=np.uint8))
            position += len(piece)
    scored_mask = np.concatenate(mask) if mask else np.zeros(0, np.uint8)
    return TokenStream(
        np.concatenate(ids) if ids else np.zeros(0, np.int64),
        np.asarray(starts, dtype=np.int64),
        np.asarray(n_bytes, dtype=np.int64),
        None if scored_mask.all() else scored_mask,
    )


def _encoded(tokenizer: Any, examples: list[Example]) -> Iterator[tuple[np.ndarray, int]]:
    """(ids, 1 if scored else 0) pieces of the examples in order: each prompt, then its text
    in pieces of about CHUNK_CHARACTERS cut at line ends."""
    for example in examples:
        if example.prompt:
            yield tokenizer.encode(example.prompt), 0
        text, start = example.text, 0
        while start < len(text):
            stop = text.find("\n", start + CHUNK_CHARACTERS)
            stop = len(text) if stop < 0 else stop + 1
            yield tokenizer.encode(text[start:stop]), 1
            start = stop

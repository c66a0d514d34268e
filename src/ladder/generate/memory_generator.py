"""`MemoryGenerator`: the translation memory of a seq2seq ladder as a generator. `translate`
looks each source up; for streaming and the server's continuous batching, `RecallDecoder`
replays the recalled target one character at a time through the language-model `Decoder`
contract, so the memory is served by the same endpoints as the networks.

The source goes in as its Unicode code points, so the memory reads exactly the text
`translate` reads (a character unseen in training, an upper-case letter, stays itself); the
recalled target comes out in the ids of a character tokenizer of the training texts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ladder.data.lm_tokenizers import CharTokenizer
from ladder.generate.generator import sampling_params
from ladder.generate.stream import SamplingParams, stream_text
from ladder.models.memory import TranslationMemory

RULED_OUT = -1.0e9  # the logit of every token but the recalled one


class RecallDecoder:
    """The memory's target for a source, as logits that allow only its next character (then
    `eos_id`). The source ids are code points; the target's are those of a character
    tokenizer of the training texts."""

    def __init__(self, memory: TranslationMemory, chars: CharTokenizer) -> None:
        self.memory, self.chars = memory, chars
        self.eos_id = chars.vocab_size
        self.vocab_size = chars.vocab_size + 1
        self.context_length = 1 << 20

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        """The first character of the target recalled for the source `ids` (code points)."""
        target = self.memory.predict(["".join(map(chr, ids))])[0]
        recalled = [*map(int, self.chars.encode(target)), self.eos_id]
        return self._only(recalled[0]), (recalled, 0)

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """The next recalled character of each sequence (eos once it is spelled out)."""
        rows, new = [], []
        for recalled, at in states:
            at = min(at + 1, len(recalled) - 1)
            rows.append(self._only(recalled[at]))
            new.append((recalled, at))
        return np.stack(rows), new

    def _only(self, token: int) -> np.ndarray:
        logits = np.full(self.vocab_size, RULED_OUT, dtype=np.float32)
        logits[token] = 0.0
        return logits


@dataclass
class MemoryGenerator:
    """A fitted translation memory and the character tokenizer its stream is spelled with."""

    memory: TranslationMemory
    chars: CharTokenizer
    manifest: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.decoder = RecallDecoder(self.memory, self.chars)

    @property
    def task(self) -> str:
        """Always "seq2seq"."""
        return "seq2seq"

    @property
    def context_length(self) -> int:
        """Unbounded in practice: the memory reads whole sources."""
        return self.decoder.context_length

    def encode(self, text: str) -> list[int]:
        """The source ids of `text`: its code points, which keep every character."""
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        """The target text of character ids."""
        return self.chars.decode(ids)

    def prompt_ids(self, source: str, truncate: bool = True) -> tuple[list[int], int]:
        """The source's code points (nothing is cut); ValueError for an empty source."""
        if not source:
            raise ValueError("the source is empty: give a text to translate")
        return self.encode(source), 0

    def translate(self, sources: list[str], params: Any = None, **options: Any) -> list[str]:
        """The recalled target of each source (decoding options do not apply to a memory)."""
        return self.memory.predict(list(sources))

    def stream(
        self, source: str, params: SamplingParams | None = None, **options: Any
    ) -> Iterator[str]:
        """The recalled target in chunks (up to `max_new_tokens` characters)."""
        params = sampling_params(params, options)
        ids, _ = self.prompt_ids(source)
        return stream_text(self.decoder, lambda _: ids, self.decode, source, params)

    def generate(self, source: str, params: SamplingParams | None = None, **options: Any) -> str:
        """The recalled target of `source`."""
        return "".join(self.stream(source, params, **options))

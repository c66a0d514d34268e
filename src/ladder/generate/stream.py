"""Decoding with numpy alone: pick next tokens from a `Decoder`'s logits and stream text.

`Sampler` turns logits into a token id: greedy at temperature 0, else a draw from
softmax(logits / temperature) cut to the `top_k` most likely tokens and then to the nucleus,
the fewest most likely tokens holding `top_p` of the probability. `stream_ids` feeds a decoder
its own choices; `TextStream` turns ids into text chunks as they come (never half a UTF-8
character) and stops at a stop string, which it never shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ladder.generate.decoder import Decoder


@dataclass(frozen=True)
class SamplingParams:
    """How to continue a prompt (the names of `ladder generate`'s options)."""

    max_new_tokens: int = 64
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = field(default_factory=tuple)

    def problems(self) -> list[str]:
        """One line per parameter out of its range (empty when all are fine)."""
        out = []
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            out.append(f"max_new_tokens must be an integer >= 1, got {self.max_new_tokens!r}")
        elif self.max_new_tokens < 1:
            out.append(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if not isinstance(self.temperature, int | float) or not self.temperature >= 0:
            out.append(f"temperature must be a number >= 0 (0: greedy), got {self.temperature!r}")
        if self.top_k is not None and (
            isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1
        ):
            out.append(f"top_k must be an integer >= 1, got {self.top_k!r}")
        if self.top_p is not None and (
            not isinstance(self.top_p, int | float) or not 0 < self.top_p <= 1
        ):
            out.append(f"top_p must be in (0, 1], got {self.top_p!r}")
        if self.seed is not None and (
            isinstance(self.seed, bool) or not isinstance(self.seed, int)
        ):
            out.append(f"seed must be an integer, got {self.seed!r}")
        if any(not isinstance(s, str) or not s for s in self.stop):
            out.append("stop must be a list of non-empty strings")
        return out

    def check(self) -> SamplingParams:
        """Itself; ValueError naming the first parameter out of its range."""
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])
        return self


class Sampler:
    """Next-token choice for one sequence, with its own seeded random stream."""

    def __init__(self, params: SamplingParams) -> None:
        self.params = params.check()
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: np.ndarray) -> int:
        """The next token id from the logits (vocab,) at the last position."""
        p = self.params
        if p.temperature == 0:
            return int(np.argmax(logits))
        scaled = np.asarray(logits, dtype=np.float64) / p.temperature
        if p.top_k is not None and p.top_k < scaled.size:
            kth = np.partition(scaled, -p.top_k)[-p.top_k]
            scaled = np.where(scaled < kth, -np.inf, scaled)  # ties at the k-th value stay
        if p.top_p is not None and p.top_p < 1:
            order = np.argsort(-scaled, kind="stable")
            probs = _softmax(scaled[order])
            before = np.cumsum(probs) - probs  # the mass of the more likely tokens
            cut = np.zeros(scaled.size, dtype=bool)
            cut[order] = before >= p.top_p  # the most likely token always stays
            scaled = np.where(cut, -np.inf, scaled)
        probs = _softmax(scaled)
        return int(self.rng.choice(probs.size, p=probs))


def _softmax(x: np.ndarray) -> np.ndarray:
    shifted = np.exp(x - np.max(x))
    return shifted / shifted.sum()


def stream_ids(decoder: Decoder, prompt_ids: list[int], params: SamplingParams) -> Iterator[int]:
    """New token ids continuing `prompt_ids`, one at a time, up to `params.max_new_tokens`.

    The prompt is read once, then one token per step from the decoder's state. When the
    context is full, the last `context_length - 1` tokens are read afresh (a sliding window).
    A prompt longer than the context keeps its last tokens (the caller warns or refuses).
    A decoder with an `eos_id` (a seq2seq model) ends the stream when it picks that token."""
    sampler = Sampler(params)
    eos = getattr(decoder, "eos_id", None)  # a seq2seq decoder ends its output with eos
    if not prompt_ids:
        raise ValueError("the prompt is empty: the model needs at least one token to continue")
    size = decoder.context_length
    context = list(prompt_ids[-size:])
    logits, state = decoder.prefill(context)
    for produced in range(params.max_new_tokens):
        token = sampler(logits)
        if token == eos:
            return
        yield token
        if produced + 1 == params.max_new_tokens:
            return
        context.append(token)
        if len(context) > size:
            context = context[-(size - 1) :] if size > 1 else context[-1:]
            logits, state = decoder.prefill(context)
        else:
            step, states = decoder.decode([token], [state])
            logits, state = step[0], states[0]


class TextStream:
    """Text chunks of generated ids as they arrive, cut at the first stop string.

    `decode` is the tokenizer's ids -> text. A chunk is withheld while it ends in a partial
    UTF-8 character (shown as U+FFFD) or could be the start of a stop string."""

    def __init__(self, decode: Any, stop: Iterable[str] = ()) -> None:
        self.decode, self.stop = decode, tuple(stop)
        self.ids: list[int] = []
        self.shown = 0  # characters of the decoded text already given out
        self.stopped = False

    def push(self, token: int) -> str:
        """The new text that `token` makes safe to show ('' when none yet, or once stopped)."""
        if self.stopped:
            return ""
        self.ids.append(token)
        text = self.decode(self.ids)
        for stop in self.stop:
            at = text.find(stop, max(0, self.shown - len(stop)))
            if at >= 0:
                self.stopped = True
                chunk = text[self.shown : at]
                self.shown = at
                return chunk
        safe = len(text)
        while safe > self.shown and text[safe - 1] == "\ufffd":
            safe -= 1
        for stop in self.stop:  # keep back a tail that may grow into a stop string
            for k in range(min(len(stop) - 1, safe - self.shown), 0, -1):
                if text[safe - k : safe] == stop[:k]:
                    safe -= k
                    break
        chunk = text[self.shown : safe]
        self.shown = safe
        return chunk

    def flush(self) -> str:
        """The text still withheld once generation ends (nothing after a stop string)."""
        if self.stopped:
            return ""
        text = self.decode(self.ids)
        chunk = text[self.shown :]
        self.shown = len(text)
        return chunk


def stream_text(
    decoder: Decoder, encode: Any, decode: Any, prompt: str, params: SamplingParams
) -> Iterator[str]:
    """Text chunks continuing `prompt` (tokenized with `encode`, ids back with `decode`),
    ending at `max_new_tokens` tokens or at a stop string."""
    ids = [int(i) for i in encode(prompt)]
    text = TextStream(decode, params.stop)
    for token in stream_ids(decoder, ids, params):
        chunk = text.push(token)
        if chunk:
            yield chunk
        if text.stopped:
            return
    rest = text.flush()
    if rest:
        yield rest

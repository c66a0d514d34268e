"""Decoding a sequence-to-sequence model with numpy alone: greedy search, beam search and
sampling, batched over many sources.

A `Seq2SeqDecoder` wraps one loaded model (PyTorch in `ladder.generate.seq2seq_torch`, ONNX
Runtime in `ladder.export.seq2seq_onnx`): `encode` reads the sources once, `start` feeds the
decoder its start token, `decode` moves any number of sequences one token on in one call. Each
search step makes one `decode` call for the live hypotheses of every source. A target ends at
eos, which it never contains, or at `min(max_new_tokens, decoder.max_target_length)` tokens.

Beam search scores a finished hypothesis as its summed log-probability over length**alpha
(the length counts the eos; Wu et al. 2016 as in Hugging Face's `length_penalty`), keeps
`beam_size` live hypotheses per source from the best `2 * beam_size` continuations, and stops a
source once it has `beam_size` finished hypotheses that no live one can beat any more.
`no_repeat_ngram_size` n bans, in every mode, a token that would repeat an n-gram of the target.

`ladder.generate.seq2seq_steps.StepDecoder` is the batching both decoders share.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ladder.generate.stream import Sampler, SamplingParams


class Seq2SeqDecoder(Protocol):
    """One loaded sequence-to-sequence model, seen as an encoder and batched decoder steps."""

    vocab_size: int  # the target vocabulary (the width of the logits)
    bos_id: int  # the decoder's start token
    eos_id: int
    max_source_length: int
    max_target_length: int

    def encode(self, sources: list[list[int]]) -> list[Any]:
        """One opaque state per source id list."""
        ...

    def start(self, encoded: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Logits (n, vocab) float32 of each target's first token (after bos), and the states."""
        ...

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Feed `tokens[i]` to sequence `states[i]` for every i at once: logits (n, vocab)
        float32 and new states (the old ones stay valid: beam search continues one twice)."""
        ...


@dataclass(frozen=True)
class SearchParams:
    """How to decode targets: beam search when beam_size > 1, else greedy at temperature 0
    and sampling above it (top_k, top_p and seed as in `SamplingParams`)."""

    max_new_tokens: int | None = None  # None: as many as the model can produce
    beam_size: int = 1
    length_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    temperature: float = 0.0
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None

    def sampling(self) -> SamplingParams:
        """The parameters of the token choice (greedy or sampling)."""
        return SamplingParams(
            max_new_tokens=1 if self.max_new_tokens is None else self.max_new_tokens,
            temperature=self.temperature,
            top_k=self.top_k,
            top_p=self.top_p,
            seed=self.seed,
        )

    def problems(self) -> list[str]:
        """One line per parameter out of its range (empty when all are fine)."""
        out = self.sampling().problems()
        if _not_int(self.beam_size):
            out.append(f"beam_size must be an integer >= 1, got {self.beam_size!r}")
        elif self.beam_size < 1:
            out.append(f"beam_size must be >= 1, got {self.beam_size}")
        elif self.beam_size > 1 and self.temperature != 0:
            out.append(
                f"temperature must be 0 with beam_size > 1 (beam search does not sample), "
                f"got {self.temperature!r}"
            )
        if not isinstance(self.length_penalty, int | float) or not math.isfinite(
            self.length_penalty
        ):
            out.append(f"length_penalty must be a finite number, got {self.length_penalty!r}")
        if _not_int(self.no_repeat_ngram_size) or self.no_repeat_ngram_size < 0:
            out.append(
                "no_repeat_ngram_size must be an integer >= 0 (0: off), got "
                f"{self.no_repeat_ngram_size!r}"
            )
        return out

    def check(self) -> SearchParams:
        """Itself; ValueError naming the first parameter out of its range."""
        problems = self.problems()
        if problems:
            raise ValueError(problems[0])
        return self


def _not_int(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int)


def search(
    decoder: Seq2SeqDecoder, sources: list[list[int]], params: SearchParams
) -> list[list[int]]:
    """The target ids (without bos and eos) of every source: beam search when
    `params.beam_size` > 1, else greedy or sampled."""
    params.check()
    if params.beam_size > 1:
        return _beam_search(decoder, sources, params)
    targets: list[list[int]] = [[] for _ in sources]
    for chosen in _steps(decoder, sources, params):
        for source, token in chosen:
            targets[source].append(token)
    return targets


def greedy(
    decoder: Seq2SeqDecoder,
    sources: list[list[int]],
    max_new_tokens: int | None = None,
    no_repeat_ngram_size: int = 0,
) -> list[list[int]]:
    """The most likely next token at each step, for every source."""
    params = SearchParams(max_new_tokens=max_new_tokens, no_repeat_ngram_size=no_repeat_ngram_size)
    return search(decoder, sources, params)


def beam_search(
    decoder: Seq2SeqDecoder,
    sources: list[list[int]],
    beam_size: int = 4,
    length_penalty: float = 1.0,
    no_repeat_ngram_size: int = 0,
    max_new_tokens: int | None = None,
) -> list[list[int]]:
    """The best-scoring target of a beam search of `beam_size` hypotheses per source (a beam
    of 1 keeps looking past an early eos, unlike greedy search)."""
    params = SearchParams(
        max_new_tokens=max_new_tokens,
        beam_size=beam_size,
        length_penalty=length_penalty,
        no_repeat_ngram_size=no_repeat_ngram_size,
    ).check()
    return _beam_search(decoder, sources, params)


def sample(
    decoder: Seq2SeqDecoder,
    sources: list[list[int]],
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    max_new_tokens: int | None = None,
    no_repeat_ngram_size: int = 0,
) -> list[list[int]]:
    """Targets drawn token by token. Each source draws from its own stream seeded with `seed`,
    so a source's target does not depend on the other sources of the batch."""
    params = SearchParams(
        max_new_tokens=max_new_tokens,
        no_repeat_ngram_size=no_repeat_ngram_size,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
    )
    return search(decoder, sources, params)


def stream_target(
    decoder: Seq2SeqDecoder, source_ids: list[int], params: SearchParams
) -> Iterator[int]:
    """The target ids of one source as they are chosen (greedy or sampled; never eos).
    The parameters are checked at the call, before the first token."""
    params.check()
    if params.beam_size != 1:
        raise ValueError(
            f"stream_target decodes greedily or by sampling: beam_size must be 1, got "
            f"{params.beam_size} (beam search knows its target only at the end)"
        )
    return (token for chosen in _steps(decoder, [source_ids], params) for _, token in chosen)


def target_limit(decoder: Seq2SeqDecoder, max_new_tokens: int | None) -> int:
    """The most target tokens (without eos) to produce: min(asked, the model's limit)."""
    limit = int(decoder.max_target_length)
    return limit if max_new_tokens is None else min(max_new_tokens, limit)


def _steps(
    decoder: Seq2SeqDecoder, sources: list[list[int]], params: SearchParams
) -> Iterator[list[tuple[int, int]]]:
    """Greedy or sampled decoding of every source at once: per step, the (source, token)
    chosen for each source still going (those ending at eos drop out)."""
    if not sources:
        return
    limit = target_limit(decoder, params.max_new_tokens)
    samplers = [Sampler(params.sampling()) for _ in sources]  # the same seed in each
    targets: list[list[int]] = [[] for _ in sources]
    logits, states = decoder.start(decoder.encode(sources))
    live = list(range(len(sources)))  # the source of each row of logits and states
    for length in range(limit):  # tokens each live target holds
        going, chosen = [], []
        for row, source in enumerate(live):
            scores = _without_repeats(logits[row], targets[source], params.no_repeat_ngram_size)
            token = samplers[source](scores)
            if token != decoder.eos_id:
                targets[source].append(token)
                going.append(row)
                chosen.append((source, token))
        yield chosen
        if not going or length + 1 == limit:
            return
        live = [live[row] for row in going]
        tokens = [targets[source][-1] for source in live]
        logits, states = decoder.decode(tokens, [states[row] for row in going])


def _without_repeats(logits: np.ndarray, tokens: list[int], n: int) -> np.ndarray:
    """`logits` with -inf for every token that would repeat an n-gram of `tokens` (n = 0: the
    logits unchanged)."""
    banned = banned_tokens(tokens, n)
    if not banned:
        return logits
    out = np.array(logits, dtype=np.float64)
    out[banned] = -np.inf
    return out


def banned_tokens(tokens: list[int], n: int) -> list[int]:
    """The tokens that, appended to `tokens`, would complete an n-gram already in them."""
    if n <= 0 or len(tokens) < n:
        return []
    prefix = tokens[len(tokens) - n + 1 :]  # the n-1 last tokens (none for n = 1)
    return [
        tokens[i + n - 1] for i in range(len(tokens) - n + 1) if tokens[i : i + n - 1] == prefix
    ]


@dataclass
class _Hypothesis:
    tokens: list[int]
    logprob: float  # the sum of its tokens' log-probabilities
    state: Any  # the decoder's state: its parent's until its last token is fed


class _Beam:
    """One source's beam: its live hypotheses and its best finished ones (best first)."""

    def __init__(self, state: Any, size: int, alpha: float, limit: int) -> None:
        self.live = [_Hypothesis([], 0.0, state)]
        self.finished: list[tuple[float, list[int]]] = []
        self.size, self.alpha, self.limit = size, alpha, limit

    def advance(self, logprobs: np.ndarray, eos: int, n_gram: int) -> None:
        """Extend the live hypotheses with their next-token log-probabilities (one row each)."""
        totals = np.empty_like(logprobs)
        for row, hyp in enumerate(self.live):
            totals[row] = _without_repeats(logprobs[row], hyp.tokens, n_gram) + hyp.logprob
        flat = totals.ravel()
        count = min(2 * self.size, flat.size)
        best = np.argpartition(-flat, count - 1)[:count]
        best = best[np.lexsort((best, -flat[best]))]  # by score, ties by index
        length = len(self.live[0].tokens)
        live = []
        for rank, index in enumerate(best):
            score = float(flat[index])
            if score == -np.inf:
                break
            parent, token = divmod(int(index), logprobs.shape[1])
            hyp = self.live[parent]
            if token == eos:  # ends here, if among the best `size` continuations
                if rank < self.size:
                    self._finish(hyp.tokens, score, length + 1)
            else:
                live.append(_Hypothesis([*hyp.tokens, token], score, hyp.state))
                if len(live) == self.size:
                    break
        if length + 1 == self.limit:  # no room for more tokens: they end without eos
            for hyp in live:
                self._finish(hyp.tokens, hyp.logprob, length + 1)
            live = []
        self.live = [] if self._settled(live, length + 1) else live

    def _finish(self, tokens: list[int], logprob: float, length: int) -> None:
        self.finished.append((logprob / length**self.alpha, tokens))
        self.finished.sort(key=lambda item: -item[0])  # stable: the earlier wins a tie
        del self.finished[self.size :]

    def _settled(self, live: list[_Hypothesis], length: int) -> bool:
        """Whether no live hypothesis (of `length` tokens) can beat the finished ones."""
        if not live:
            return True
        if len(self.finished) < self.size:
            return False
        # the log-probability only falls as tokens come, so the best a hypothesis can reach
        # is its sum now over the length most in its favour: the longest for alpha > 0
        best = max(hyp.logprob for hyp in live)
        most = self.limit if self.alpha > 0 else length + 1
        return best / most**self.alpha <= self.finished[-1][0]

    def best(self) -> list[int]:
        return self.finished[0][1] if self.finished else []


def _beam_search(
    decoder: Seq2SeqDecoder, sources: list[list[int]], params: SearchParams
) -> list[list[int]]:
    if not sources:
        return []
    limit = target_limit(decoder, params.max_new_tokens)
    logits, states = decoder.start(decoder.encode(sources))
    beams = [_Beam(state, params.beam_size, params.length_penalty, limit) for state in states]
    rows: dict[int, list[int]] = {s: [s] for s in range(len(sources))}  # source -> its rows
    while rows:
        logprobs = _log_softmax(logits)
        for source, at in rows.items():
            beams[source].advance(logprobs[at], decoder.eos_id, params.no_repeat_ngram_size)
        live = [(source, hyp) for source in rows for hyp in beams[source].live]
        if not live:
            break
        rows = defaultdict(list)
        for row, (source, _) in enumerate(live):
            rows[source].append(row)
        logits, states = decoder.decode(
            [hyp.tokens[-1] for _, hyp in live], [hyp.state for _, hyp in live]
        )
        for (_, hyp), state in zip(live, states, strict=True):
            hyp.state = state
    return [beam.best() for beam in beams]


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = np.asarray(logits, dtype=np.float64)
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


__all__ = [
    "SearchParams",
    "Seq2SeqDecoder",
    "banned_tokens",
    "beam_search",
    "greedy",
    "sample",
    "search",
    "stream_target",
    "target_limit",
]

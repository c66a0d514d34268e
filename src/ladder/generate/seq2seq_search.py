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

`StepDecoder` is the batching both decoders share: a model's batched encoder and decoder step
become per-sequence states that `decode` stacks, runs and splits.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ladder.errors import DataError
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
    state: Any  # the decoder's state before its last token is fed


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
    rows = {source: [source] for source in range(len(sources))}  # source -> rows of logits
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


@dataclass(frozen=True)
class StepState:
    """One sequence between decoder steps: its rows (batch of 1) of the encoder's memory, the
    source mask and the decoder's past, and the position of the next token it is fed."""

    memory: tuple[Any, ...]
    src_mask: Any
    past: tuple[Any, ...]
    position: int


class StepDecoder:
    """A `Seq2SeqDecoder` over a model's batched encoder and decoder step, in any array
    library (torch tensors, numpy arrays). Subclasses set the protocol's attributes,
    `source_vocab_size` (None: unchecked) and `source_axes`, and supply `run_encoder`,
    `run_step`, `concat` and `pad`.

    `decode` runs the step once for all the sequences whose past tensors have equal shapes
    (a Transformer's self-attention keys and values: those at the same position), their memory
    padded on its source axis to the longest source of the run and the source mask False
    there; each sequence keeps its own position. A sequence at `max_target_length` gets logits
    that force eos, and its state stays."""

    vocab_size: int
    bos_id: int
    eos_id: int
    max_source_length: int
    max_target_length: int
    source_vocab_size: int | None = None
    source_axes: tuple[int | None, ...] = ()  # per memory tensor, its source axis (or None)

    # the last stacked memory and mask, reused while a search's sequences go on unchanged
    _stacked: tuple[list[Any], Any] = ([], None)

    def run_encoder(
        self, ids: np.ndarray, mask: np.ndarray
    ) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
        """(memory, source mask, initial past) of padded source ids (n, S) and their mask."""
        raise NotImplementedError

    def run_step(
        self,
        tokens: np.ndarray,
        memory: tuple[Any, ...],
        src_mask: Any,
        past: tuple[Any, ...],
        positions: np.ndarray,
    ) -> tuple[np.ndarray, tuple[Any, ...]]:
        """(logits (n, vocab) float32, present) of one step for tokens (n, 1) at positions (n,)."""
        raise NotImplementedError

    def concat(self, parts: list[Any]) -> Any:
        """The arrays joined on axis 0."""
        raise NotImplementedError

    def pad(self, array: Any, axis: int, length: int) -> Any:
        """The array padded at the end of `axis` to `length` with zeros (False for a mask)."""
        raise NotImplementedError

    def encode(self, sources: list[list[int]]) -> list[StepState]:
        """The state of each source before the decoder's first step (an empty source reads
        as one padding token, masked)."""
        check_sources(sources, self.max_source_length, self.source_vocab_size)
        if not sources:
            return []
        longest = max(1, *(len(ids) for ids in sources))
        ids = np.zeros((len(sources), longest), dtype=np.int64)
        mask = np.zeros((len(sources), longest), dtype=bool)
        for row, source in enumerate(sources):
            ids[row, : len(source)] = source
            mask[row, : len(source)] = True
        memory, src_mask, past = self.run_encoder(ids, mask)
        return [
            StepState(_row(memory, i), src_mask[i : i + 1], _row(past, i), 0)
            for i in range(len(sources))
        ]

    def start(self, encoded: list[StepState]) -> tuple[np.ndarray, list[StepState]]:
        """Logits of each target's first token, bos fed."""
        return self.decode([self.bos_id] * len(encoded), encoded)

    def decode(
        self, tokens: list[int], states: list[StepState]
    ) -> tuple[np.ndarray, list[StepState]]:
        """Feed `tokens[i]` to `states[i]` for every i: logits (n, vocab) and new states."""
        if len(tokens) != len(states):
            raise ValueError(f"{len(tokens)} tokens for {len(states)} states")
        logits = np.full((len(states), self.vocab_size), -np.inf, dtype=np.float32)
        new = list(states)
        groups: dict[Any, list[int]] = defaultdict(list)  # shapes -> rows
        for row, state in enumerate(states):
            if state.position >= self.max_target_length:
                logits[row, self.eos_id] = 0.0  # no position left: the target must end
            else:
                groups[self._shapes(state)].append(row)
        for rows in groups.values():
            group = [states[row] for row in rows]
            memory, src_mask = self._stack_sources(group)
            past = self._joined([s.past for s in group])
            fed = np.asarray([[tokens[row]] for row in rows], dtype=np.int64)  # (group, 1)
            positions = np.asarray([s.position for s in group], dtype=np.int64)  # (group,)
            out, present = self.run_step(fed, memory, src_mask, past, positions)
            logits[rows] = out
            for i, (row, state) in enumerate(zip(rows, group, strict=True)):
                new[row] = StepState(
                    state.memory, state.src_mask, _row(present, i), state.position + 1
                )
        return logits, new

    def _shapes(self, state: StepState) -> tuple[Any, ...]:
        """What must agree for states to share a run: the shapes of the memory (but its
        source length) and of the past."""
        memory = tuple(
            tuple(None if axis == source else n for axis, n in enumerate(t.shape) if axis)
            for t, source in zip(state.memory, self.source_axes, strict=True)
        )
        return memory, tuple(tuple(t.shape[1:]) for t in state.past)

    def _stack_sources(self, group: list[StepState]) -> tuple[tuple[Any, ...], Any]:
        """The group's memory and source masks on one batch, padded to its longest source."""
        sources = [(s.memory, s.src_mask) for s in group]
        last, stacked = self._stacked
        if len(last) == len(sources) and all(
            a[0] is b[0] and a[1] is b[1] for a, b in zip(last, sources, strict=True)
        ):
            return stacked
        longest = max(s.src_mask.shape[1] for s in group)
        padded = [self._padded(s, longest) for s in group]
        stacked = (self._joined([m for m, _ in padded]), self.concat([m for _, m in padded]))
        self._stacked = (sources, stacked)
        return stacked

    def _padded(self, state: StepState, longest: int) -> tuple[tuple[Any, ...], Any]:
        if state.src_mask.shape[1] == longest:
            return state.memory, state.src_mask
        memory = tuple(
            t if axis is None else self.pad(t, axis, longest)
            for t, axis in zip(state.memory, self.source_axes, strict=True)
        )
        return memory, self.pad(state.src_mask, 1, longest)

    def _joined(self, rows: list[tuple[Any, ...]]) -> tuple[Any, ...]:
        """Per-sequence tuples of arrays joined into one tuple of batches."""
        return tuple(self.concat(list(parts)) for parts in zip(*rows, strict=True))


def _row(arrays: tuple[Any, ...], i: int) -> tuple[Any, ...]:
    return tuple(array[i : i + 1] for array in arrays)


def changed_axes(
    shapes: list[tuple[int, ...]], other: list[tuple[int, ...]]
) -> tuple[int | None, ...]:
    """Per pair of shapes of the same tensor, the axis (after the batch axis) whose size
    differs, or None; ValueError when several differ."""
    axes: list[int | None] = []
    for a, b in zip(shapes, other, strict=True):
        differ = [axis for axis in range(1, len(a)) if a[axis] != b[axis]]
        if len(differ) > 1:
            raise ValueError(f"shapes {tuple(a)} and {tuple(b)} differ on more than one axis")
        axes.append(differ[0] if differ else None)
    return tuple(axes)


def check_sources(
    sources: list[list[int]], max_source_length: int, vocab_size: int | None = None
) -> None:
    """DataError naming the first source longer than the model reads or holding an id
    outside its source vocabulary."""
    for i, ids in enumerate(sources):
        if len(ids) > max_source_length:
            raise DataError(
                f"source {i} has {len(ids)} tokens; the model reads at most "
                f"{max_source_length} (max_source_length): truncate it first"
            )
        if vocab_size is not None:
            bad = [t for t in ids if not 0 <= t < vocab_size]
            if bad:
                raise DataError(
                    f"source {i} holds token id {bad[0]}, outside the model's source "
                    f"vocabulary [0, {vocab_size})"
                )


__all__ = [
    "SearchParams",
    "Seq2SeqDecoder",
    "StepDecoder",
    "StepState",
    "banned_tokens",
    "beam_search",
    "changed_axes",
    "check_sources",
    "greedy",
    "sample",
    "search",
    "stream_target",
    "target_limit",
]

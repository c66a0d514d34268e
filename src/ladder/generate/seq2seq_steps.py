"""`StepDecoder`: the batching the torch and ONNX Runtime seq2seq decoders share. A model's
batched encoder and decoder step become per-sequence states (`StepState`) that `decode`
stacks into one batch, runs and splits again, so any mix of sequences decodes together."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladder.errors import DataError


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


__all__ = ["StepDecoder", "StepState", "changed_axes", "check_sources"]

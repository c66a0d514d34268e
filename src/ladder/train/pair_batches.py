"""Teacher-forcing batches of (source, target) token-id pairs, for step-based training.

`PairBatches` gives `Trainer.fit_steps` what `TokenWindows` gives it for a language model: a
batch is drawn as random pair indices, a pure function of (seed, draw, batch index), so a
resumed run draws the very pairs it would have drawn and every DDP process draws the same
global batch and takes its own rows of it; validation uses the same few fixed batches at every
evaluation. A batch is one int64 array x (batch, 2, L) -- the source ids, and the decoder's
input `[bos] + target` -- and the targets y (batch, L) = `target + [eos]`, each row padded to
the batch's longest sequence L (pad_id in x, IGNORE_INDEX in y, so padding is not learned).
"""

from __future__ import annotations

import numpy as np

from ladder.errors import DataError
from ladder.train.objective import IGNORE_INDEX


class PairBatches:
    """One split's (source, target) pairs of token ids, batched for teacher forcing.

    Args:
        sources: each pair's source ids (1-d integer arrays, already truncated to what the
            model reads).
        targets: each pair's target ids, without bos or eos (already truncated so that the
            target and its eos fit the model).
        pad_id: the id that fills the source and decoder-input rows past their end.
        bos_id: the decoder's start token, before the first target token.
        eos_id: the end of a target, the last token the decoder learns to produce.
        split: the split's name, for error messages ("training", "validation").

    Raises DataError when there is no pair, when sources and targets differ in number, or when
    an id array is not a 1-d array of non-negative integers.
    """

    def __init__(
        self,
        sources: list[np.ndarray],
        targets: list[np.ndarray],
        pad_id: int,
        bos_id: int,
        eos_id: int,
        split: str = "training",
    ) -> None:
        if len(sources) != len(targets):
            raise DataError(
                f"the {split} split has {len(sources):,} sources but {len(targets):,} targets; "
                "each pair needs both"
            )
        if not sources:
            raise DataError(f"the {split} split has no pairs: nothing to batch")
        self.sources = [_ids(s, split, "source", i) for i, s in enumerate(sources)]
        self.targets = [_ids(t, split, "target", i) for i, t in enumerate(targets)]
        self.pad_id, self.bos_id, self.eos_id, self.split = pad_id, bos_id, eos_id, split
        self._source_lengths = np.array([len(s) for s in self.sources], dtype=np.int64)
        self._target_lengths = np.array([len(t) for t in self.targets], dtype=np.int64)
        # mean target tokens per pair with its eos: what tokens_per_s counts per row
        self.block_size = max(1, round(float(np.mean(self._target_lengths + 1))))

    def __len__(self) -> int:
        """The number of pairs."""
        return len(self.sources)

    def starts(self, seed: int, draw: int, n_batches: int, batch_size: int) -> np.ndarray:
        """Random pair indices (n_batches, batch_size) int64, the same for the same arguments."""
        rng = np.random.default_rng([seed, draw])
        return rng.integers(0, len(self.sources), size=(n_batches, batch_size), dtype=np.int64)

    def batch(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pairs at `rows` (batch,): inputs x (batch, 2, L) int64 -- source ids, then the
        decoder input `[bos] + target` -- and targets y (batch, L) int64, `target + [eos]`;
        L is the longest source or target + 1 of the batch."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        length = int(max(self._source_lengths[rows].max(), self._target_lengths[rows].max() + 1))
        x = np.full((len(rows), 2, length), self.pad_id, dtype=np.int64)
        y = np.full((len(rows), length), IGNORE_INDEX, dtype=np.int64)
        x[:, 1, 0] = self.bos_id
        for i, row in enumerate(rows):
            source, target = self.sources[row], self.targets[row]
            x[i, 0, : len(source)] = source
            x[i, 1, 1 : len(target) + 1] = target  # the decoder reads the target shifted right
            y[i, : len(target)] = target
            y[i, len(target)] = self.eos_id
        return x, y

    def n_targets(self, rows: np.ndarray) -> np.ndarray:
        """The counted targets (target tokens + eos) of each pair at `rows` (same shape)."""
        return self._target_lengths[np.asarray(rows, dtype=np.int64)] + 1


def _ids(ids: np.ndarray, split: str, side: str, index: int) -> np.ndarray:
    """`ids` as a 1-d int64 array; DataError naming the pair otherwise."""
    array = np.asarray(ids)
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer) or array.min() < 0:
        raise DataError(
            f"the {split} split's pair {index}: the {side} ids must be a 1-d array of "
            f"non-negative integers, got {array.dtype} {array.shape}"
        )
    return array.astype(np.int64, copy=False)

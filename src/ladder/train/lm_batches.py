"""Batches of next-token windows from a token stream on disk, for step-based training.

A `TokenWindows` is one split's stream (a numpy memmap: a corpus larger than memory is read a
window at a time) with an optional loss mask. Which windows a batch holds is a pure function of
(seed, draw, batch index): draw `e` is the e-th eval interval of training, so a resumed run
draws the very windows it would have drawn, and every DDP process draws the same global batch
and takes its own rows of it. Validation uses the same few fixed batches at every evaluation.
"""

from __future__ import annotations

import numpy as np

from ladder.data.token_windows import windows_at
from ladder.errors import DataError
from ladder.train.objective import IGNORE_INDEX

VALIDATION_DRAW = 2**31 - 1  # the draw of the fixed validation batches (intervals count 1, 2, ...)


class TokenWindows:
    """One split's tokens cut into windows of `block_size` inputs and their next tokens.

    Args:
        tokens: the token stream (1-d; a memmap from `ladder.data.token_windows.read_tokens`).
        block_size: tokens per window (the model's context).
        mask: the loss mask, one value per token (uint8, e.g. from `read_loss_mask`; 1: the
            token counts in the loss as a target, e.g. a completion token; 0: it does not,
            e.g. a prompt token).
        split: the split's name, for error messages ("training", "validation").

    Raises DataError when the stream holds no window of `block_size` + 1 tokens, when the mask's
    length differs from the stream's, or when the mask counts no token at all.
    """

    def __init__(
        self,
        tokens: np.ndarray,
        block_size: int,
        *,
        mask: np.ndarray | None = None,
        split: str = "training",
    ) -> None:
        if len(tokens) < block_size + 1:
            raise DataError(
                f"the {split} split has {len(tokens):,} tokens, fewer than one window of "
                f"block_size {block_size} + 1; lower block_size or give more text"
            )
        if mask is not None and len(mask) != len(tokens):
            raise DataError(
                f"the {split} split's loss mask has {len(mask):,} values for {len(tokens):,} "
                "tokens; it needs one per token"
            )
        if mask is not None and not np.any(mask):
            raise DataError(
                f"the {split} split's loss mask counts no token (all zeros): nothing to learn; "
                "give examples with completions"
            )
        self.tokens, self.block_size, self.mask, self.split = tokens, block_size, mask, split

    def __len__(self) -> int:
        """The number of tokens in the stream."""
        return len(self.tokens)

    def starts(self, seed: int, draw: int, n_batches: int, batch_size: int) -> np.ndarray:
        """Random window offsets (n_batches, batch_size), the same for the same arguments."""
        rng = np.random.default_rng([seed, draw])
        return rng.integers(0, len(self.tokens) - self.block_size, size=(n_batches, batch_size))

    def batch(self, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The windows at `starts` (rows,): inputs (rows, block_size) int64 and next-token
        targets, IGNORE_INDEX where the mask does not count the target."""
        x, y = windows_at(self.tokens, starts, self.block_size)
        if self.mask is not None:
            y = np.where(self.target_mask(starts), y, IGNORE_INDEX)
        return x, y

    def n_targets(self, starts: np.ndarray) -> np.ndarray:
        """The counted targets of each window at `starts` (same shape as `starts`)."""
        if self.mask is None:
            return np.full(np.shape(starts), self.block_size, dtype=np.int64)
        starts = np.asarray(starts)
        if starts.ndim > 1:  # a batch at a time: the masks of a whole interval may be large
            return np.stack([self.n_targets(batch) for batch in starts])
        return self.target_mask(starts).sum(axis=-1, dtype=np.int64)

    def target_mask(self, starts: np.ndarray) -> np.ndarray:
        """Whether each target of the windows at `starts` counts: (*starts.shape, block_size)."""
        if self.mask is None:
            return np.ones((*np.shape(starts), self.block_size), dtype=bool)
        targets = np.asarray(starts)[..., None] + 1 + np.arange(self.block_size)
        return np.asarray(self.mask[targets]) != 0

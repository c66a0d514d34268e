"""A token stream on disk (a numpy memmap, so corpora larger than memory work) and random
training windows drawn from it: inputs of `block_size` tokens and the same shifted by one."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from ladder.io import atomic_write


def write_tokens(ids: np.ndarray, path: Path, vocab_size: int) -> Path:
    """Save a token stream as a raw .bin of uint16 (vocab <= 65,536) or uint32, atomically."""
    dtype = token_dtype(vocab_size)
    data = np.ascontiguousarray(ids, dtype=dtype)
    atomic_write(path, lambda tmp: data.tofile(tmp))
    return path


def read_tokens(path: Path, vocab_size: int) -> np.memmap:
    """The token stream `write_tokens` saved, mapped read-only (not loaded into memory)."""
    return np.memmap(path, dtype=token_dtype(vocab_size), mode="r")


def write_loss_mask(mask: np.ndarray, path: Path) -> Path:
    """Save a loss mask (one value per token; nonzero: the token counts in the loss, e.g. a
    completion token) as a raw .bin of uint8 0/1, atomically."""
    data = np.ascontiguousarray(np.asarray(mask) != 0, dtype=np.uint8)
    atomic_write(path, lambda tmp: data.tofile(tmp))
    return path


def read_loss_mask(path: Path) -> np.memmap:
    """The loss mask `write_loss_mask` saved, mapped read-only."""
    return np.memmap(path, dtype=np.uint8, mode="r")


def token_dtype(vocab_size: int) -> type[np.unsignedinteger]:
    """The smallest unsigned dtype that holds every id."""
    return np.uint16 if vocab_size <= 1 << 16 else np.uint32


def random_windows(
    tokens: np.ndarray, block_size: int, batch_size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`batch_size` windows at random offsets: inputs (batch, block_size) int64 and their
    next-token targets, the same windows shifted by one token."""
    if len(tokens) <= block_size:
        raise ValueError(f"{len(tokens)} tokens hold no window of {block_size} + 1")
    starts = rng.integers(0, len(tokens) - block_size, size=batch_size)
    return windows_at(tokens, starts, block_size)


def windows_at(
    tokens: np.ndarray, starts: np.ndarray, block_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The windows beginning at `starts` (rows, each at most len(tokens) - block_size - 1):
    inputs (rows, block_size) int64 and their next-token targets."""
    rows = np.asarray(starts)[:, None] + np.arange(block_size + 1)  # (rows, block_size + 1)
    windows = np.asarray(tokens[rows], dtype=np.int64)
    return windows[:, :-1], windows[:, 1:]


class ScoringWindow(NamedTuple):
    """One window of evaluation: inputs `x`, targets `y` (`x` shifted by one), the stream
    position `start` of `y[0]` as a target index (target i is token i + 1), and `keep`: the
    targets from `y[keep]` on are scored here; the ones before it were scored by an earlier
    window and serve only as context."""

    start: int
    keep: int
    x: np.ndarray
    y: np.ndarray

    @property
    def scored(self) -> slice:
        """Where the targets this window scores (`y[keep:]`) lie in the stream's target array."""
        return slice(self.start + self.keep, self.start + len(self.y))


def scoring_windows(tokens: np.ndarray, block_size: int) -> list[ScoringWindow]:
    """Windows of `block_size` tokens sliding by half a block over the stream, for evaluation:
    every token but the first is scored exactly once, and every token after the first window
    with at least half a block of context (as a fixed-context model is scored in practice; the
    last window may be shorter)."""
    stride = max(1, block_size // 2)
    out, start, n_targets = [], 0, len(tokens) - 1
    while n_targets > 0:
        chunk = np.asarray(tokens[start : start + block_size + 1], dtype=np.int64)
        keep = 0 if start == 0 else block_size - stride
        out.append(ScoringWindow(start, keep, chunk[:-1], chunk[1:]))
        if start + block_size >= n_targets:
            break
        start += stride
    return out

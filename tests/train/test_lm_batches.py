"""Windows of a token stream for step-based training: determinism, targets and loss masks."""

from __future__ import annotations

import numpy as np

from ladder.train.lm_batches import TokenWindows
from ladder.train.objective import IGNORE_INDEX


def test_windows_are_drawn_from_seed_and_draw_only():
    windows = TokenWindows(np.arange(500, dtype=np.uint16), 8)
    a = windows.starts(seed=1, draw=3, n_batches=5, batch_size=4)
    assert a.shape == (5, 4) and np.array_equal(a, windows.starts(1, 3, 5, 4))
    assert not np.array_equal(a, windows.starts(1, 4, 5, 4))
    assert not np.array_equal(a, windows.starts(2, 3, 5, 4))
    assert a.min() >= 0 and a.max() <= 500 - 8 - 1  # every window and its targets fit


def test_targets_are_the_inputs_shifted_by_one_token():
    windows = TokenWindows(np.arange(100, dtype=np.uint16), 4)
    x, y = windows.batch(np.array([0, 95]))
    assert x.dtype == y.dtype == np.int64
    assert x.tolist() == [[0, 1, 2, 3], [95, 96, 97, 98]]
    assert y.tolist() == [[1, 2, 3, 4], [96, 97, 98, 99]]
    assert windows.n_targets(np.array([[0, 95]])).tolist() == [[4, 4]]


def test_targets_the_mask_does_not_count_are_ignored():
    """The mask is per token: a target counts when its own token's mask is 1."""
    tokens = np.arange(20, dtype=np.uint16)
    mask = np.zeros(20, dtype=np.uint8)
    mask[[3, 4, 10]] = 1  # e.g. the completion tokens
    windows = TokenWindows(tokens, 4, mask=mask)
    x, y = windows.batch(np.array([0, 6, 10]))
    assert x.tolist()[0] == [0, 1, 2, 3]
    no = IGNORE_INDEX
    assert y.tolist() == [[no, no, 3, 4], [no, no, no, 10], [no, no, no, no]]
    assert windows.n_targets(np.array([0, 6, 10])).tolist() == [2, 1, 0]
    assert windows.n_targets(np.array([[0, 6], [10, 0]])).tolist() == [[2, 1], [0, 2]]
    assert len(windows) == 20

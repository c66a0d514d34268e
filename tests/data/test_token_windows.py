"""Token streams on disk and the windows drawn from them."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.data.token_windows import (
    random_windows,
    read_loss_mask,
    read_tokens,
    scoring_windows,
    token_dtype,
    windows_at,
    write_loss_mask,
    write_tokens,
)


def test_streams_round_trip_in_the_smallest_dtype(tmp_path):
    ids = np.arange(1000) % 700
    mapped = read_tokens(write_tokens(ids, tmp_path / "train.bin", 700), 700)
    assert mapped.dtype == np.uint16 and mapped.tolist() == ids.tolist()
    assert token_dtype(70_000) == np.uint32


def test_random_windows_are_shifted_by_one_token():
    tokens = np.arange(100)
    x, y = random_windows(tokens, block_size=8, batch_size=5, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (5, 8) and x.dtype == np.int64
    np.testing.assert_array_equal(y, x + 1)
    again, _ = random_windows(tokens, 8, 5, np.random.default_rng(0))
    np.testing.assert_array_equal(again, x)  # seeded
    with pytest.raises(ValueError, match="hold no window"):
        random_windows(np.arange(8), 8, 1, np.random.default_rng(0))


@pytest.mark.parametrize(("n", "block"), [(21, 8), (2, 8), (9, 8), (30, 1), (17, 7)])
def test_scoring_windows_score_every_token_once_with_half_a_block_of_context(n, block):
    tokens = np.arange(n)
    windows = scoring_windows(tokens, block_size=block)
    scored = np.concatenate([w.y[w.keep :] for w in windows])
    np.testing.assert_array_equal(scored, np.arange(1, n))  # each target once, in order
    for w in windows:
        np.testing.assert_array_equal(w.y, w.x + 1)
        assert len(w.x) <= block and w.y[0] == w.start + 1
        np.testing.assert_array_equal(np.arange(n - 1)[w.scored] + 1, w.y[w.keep :])
        if w.start > 0:  # a later window's scored targets see at least half a block before them
            assert w.keep >= block // 2


def test_loss_masks_round_trip_as_bytes(tmp_path):
    mask = read_loss_mask(write_loss_mask(np.array([0, 1, 2, 0, True]), tmp_path / "mask.bin"))
    assert mask.dtype == np.uint8 and mask.tolist() == [0, 1, 1, 0, 1]


def test_windows_at_given_starts():
    x, y = windows_at(np.arange(10), np.array([0, 6]), block_size=3)
    assert x.tolist() == [[0, 1, 2], [6, 7, 8]] and y.tolist() == [[1, 2, 3], [7, 8, 9]]

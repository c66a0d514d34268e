"""Class weights and oversampling on a skewed label vector."""

from __future__ import annotations

import numpy as np
from sklearn.utils.class_weight import compute_class_weight

from ladder.data import class_weights, oversample_indices

SKEWED = np.array([0] * 90 + [1] * 8 + [2] * 2, dtype=np.int64)


def test_class_weights_match_sklearn_balanced():
    weights = class_weights(SKEWED, 3)
    assert weights.dtype == np.float32 and weights.shape == (3,)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=SKEWED)
    np.testing.assert_allclose(weights, expected, rtol=1e-6)
    np.testing.assert_allclose(weights, [100 / 270, 100 / 24, 100 / 6], rtol=1e-6)
    # every class carries the same total weight
    totals = weights * np.bincount(SKEWED)
    np.testing.assert_allclose(totals, totals[0], rtol=1e-6)


def test_class_absent_from_training_rows_gets_weight_one():
    weights = class_weights(np.array([0, 0, 2]), 3)
    np.testing.assert_allclose(weights, [0.75, 1.0, 1.5])


def test_oversample_balances_and_keeps_every_row():
    idx = oversample_indices(SKEWED, seed=0)
    assert idx.dtype == np.int64
    assert np.bincount(SKEWED[idx]).tolist() == [90, 90, 90]
    assert set(idx.tolist()) == set(range(100))  # every original row is kept
    majority = idx[SKEWED[idx] == 0]
    assert sorted(majority.tolist()) == list(range(90))  # majority rows are not resampled
    assert not np.array_equal(idx, np.sort(idx))  # shuffled


def test_oversample_is_seeded():
    a, b = oversample_indices(SKEWED, seed=1), oversample_indices(SKEWED, seed=1)
    c = oversample_indices(SKEWED, seed=2)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_balanced_data_is_only_shuffled():
    y = np.array([0, 1, 0, 1])
    assert sorted(oversample_indices(y, seed=0).tolist()) == [0, 1, 2, 3]

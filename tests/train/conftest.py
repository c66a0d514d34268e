"""Fixtures for the training tests."""

from __future__ import annotations

import numpy as np
import pytest
from train_helpers import make_blobs


@pytest.fixture
def blobs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(X_train, y_train, X_val, y_val)."""
    X, y = make_blobs(150)
    return X[:120], y[:120], X[120:], y[120:]

"""Class balancing: "balanced" class weights for the loss, or oversampling of minority classes."""

from __future__ import annotations

import numpy as np


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class weights n_samples / (n_present_classes * count), float32 (n_classes,).

    This is scikit-learn's "balanced" formula; a class absent from `y` gets weight 1.
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=n_classes)[:n_classes]
    present = counts > 0
    weights = np.ones(n_classes, dtype=np.float64)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def oversample_indices(y: np.ndarray, seed: int) -> np.ndarray:
    """Row indices where every class is resampled (with replacement) up to the majority count.

    Every original row is kept once; minority classes get extra random draws of their own rows.
    The result is shuffled.
    """
    y = np.asarray(y, dtype=np.int64)
    rng = np.random.default_rng(seed)
    counts = np.bincount(y)
    target = counts.max() if len(counts) else 0
    parts = []
    for class_id in np.flatnonzero(counts):
        rows = np.flatnonzero(y == class_id)
        extra = rng.choice(rows, size=target - len(rows), replace=True)
        parts.extend([rows, extra])
    indices = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
    return rng.permutation(indices).astype(np.int64)

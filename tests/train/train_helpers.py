"""Tiny learnable data, small models and fast configs for the training tests."""

from __future__ import annotations

import numpy as np
from torch import nn

from ladder.config import TrainConfig
from ladder.models.mlp import MLPConfig, build_mlp


def make_blobs(n: int = 120, n_features: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Three well separated Gaussian blobs: X float32 (n, n_features), y int64 in {0, 1, 2}."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centers = rng.normal(0, 3, size=(3, n_features))
    X = centers[y] + rng.normal(0, 0.5, size=(n, n_features))
    return X.astype(np.float32), y.astype(np.int64)


def small_mlp(n_features: int = 4, n_classes: int = 3, **params) -> nn.Module:
    return build_mlp(MLPConfig(hidden=[16], **params), (n_features,), n_classes)


def fast_config(**overrides) -> TrainConfig:
    """A few quick epochs, no early stopping unless asked."""
    base = {"epochs": 3, "batch_size": 16, "optimizer": {"lr": 0.01}, "early_stopping": None}
    return TrainConfig.model_validate({**base, **overrides})


def accuracy(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    return {"accuracy": float((y_prob.argmax(axis=1) == y_true).mean())}

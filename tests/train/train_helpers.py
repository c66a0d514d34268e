"""Tiny learnable data, small models and fast configs for the training tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from ladder.config import TrainConfig
from ladder.models.mlp import MLPConfig, build_mlp
from ladder.registry import get_spec
from ladder.train import Callback, Checkpoint, Trainer


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


class Crash(Exception):
    """Raised by CrashAt: stands for a process dying mid-training."""


class CrashAt(Callback):
    """Raises Crash after optimizer step `step` (before that step's checkpoint is written)."""

    def __init__(self, step: int | None) -> None:
        self.step = step

    def on_step_end(self, trainer) -> None:
        if trainer.step == self.step:
            raise Crash(f"crash at step {self.step}")


def noise(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A train_transform that draws from the trainer's generator."""
    return batch + 0.01 * torch.randn(batch.shape, generator=generator).to(batch.device)


def resumable_fit(
    directory: Path,
    blobs: tuple[np.ndarray, ...],
    *,
    crash_at: int | None = None,
    resume: bool = False,
    callbacks: list[Callback] | None = None,
    identity: dict | None = None,
    device: str = "cpu",
    model_type: str = "mlp",
    **overrides,
) -> Trainer | None:
    """Fit an MLP (of `model_type`: mlp or scratch_mlp) with dropout, a schedule, early
    stopping, augmentation and checkpoints in `directory` (every 3 steps); None when it
    crashed (CrashAt)."""
    torch.manual_seed(0)
    spec = get_spec(model_type)
    module = spec.build(spec.config_cls(hidden=[16], dropout=0.3), (4,), 3)
    settings = {
        "scheduler": {"name": "cosine", "warmup_epochs": 1},
        "early_stopping": {"monitor": "val_loss", "patience": 50},
        "checkpoint_every_steps": 3,
        **overrides,
    }
    all_callbacks = [Checkpoint(directory, identity=identity), CrashAt(crash_at)]
    trainer = Trainer(
        module,
        fast_config(**settings),
        callbacks=all_callbacks + (callbacks or []),
        device=device,
        val_metrics=accuracy,
        train_transform=noise,
    )
    try:
        trainer.fit(*blobs, resume_from=directory if resume else None)
    except Crash:
        return None
    return trainer


def same_weights(a: nn.Module | dict, b: nn.Module | dict) -> bool:
    """Bitwise equality of every tensor of two modules or state dicts."""
    a = a.state_dict() if isinstance(a, nn.Module) else a
    b = b.state_dict() if isinstance(b, nn.Module) else b
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def without_seconds(history: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]

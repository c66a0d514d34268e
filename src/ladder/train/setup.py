"""`TrainerSetup`: everything besides the module, the training config and the device that a
Trainer is built with. The run layer (`ladder.runner.fit.trainer_setup`: a rung, a pruned
model's fine-tuning) and the scikit-learn estimators fill one in and build their Trainers
through it, so there is one way to set a Trainer up."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from ladder.config import TrainConfig
from ladder.train.batching import TokenBatching
from ladder.train.callbacks import Callback
from ladder.train.objective import Objective
from ladder.train.trainer import BatchLoss, Metrics, Trainer, Transform

_ADDED: ContextVar[tuple[Callback, ...]] = ContextVar("ladder_added_callbacks", default=())


@contextmanager
def added_callbacks(*callbacks: Callback) -> Iterator[None]:
    """Every Trainer set up inside the block also calls `callbacks` (a tuning trial's pruning
    reaches the Trainer of whichever rung the trial trains)."""
    token = _ADDED.set((*_ADDED.get(), *callbacks))
    try:
        yield
    finally:
        _ADDED.reset(token)


@dataclass
class TrainerSetup:
    """The task's objective, class weights or oversampling weights, validation metrics, a
    training-batch transform (augmentation), the seed and token batching."""

    objective: Objective
    seed: int = 0
    class_weights: np.ndarray | None = None
    val_metrics: Metrics | None = None
    train_transform: Transform | None = None
    batching: TokenBatching | None = None
    sample_weights: np.ndarray | None = None  # per training row: oversampling

    def trainer(
        self,
        module: Any,
        train: TrainConfig,
        device: str | Any,
        callbacks: Iterable[Callback] = (),
        loss: BatchLoss | None = None,
    ) -> Trainer:
        """A Trainer of `module` with training config `train` on `device` (it predicts, too),
        calling `callbacks` and those of an enclosing `added_callbacks` block."""
        return Trainer(
            module,
            train,
            device=device,
            callbacks=[*callbacks, *_ADDED.get()],
            class_weights=self.class_weights,
            val_metrics=self.val_metrics,
            train_transform=self.train_transform,
            seed=self.seed,
            batching=self.batching,
            loss=loss,
            objective=self.objective,
        )

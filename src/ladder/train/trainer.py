"""The training loop: `fit` -> `run_single_epoch` -> `train_step` / `validation_step`.

Data arrives as in-memory numpy arrays, is moved to the device once, and batches are taken by
indexing those tensors (no per-sample Dataset calls), so the loop adds little to the cost of
the model's own forward and backward passes. Logging, early stopping, checkpoints and progress
bars are callbacks (`ladder.train.callbacks`).

Each epoch's log row: epoch, lr (at the end of the epoch; the schedule steps every batch),
train_loss (mean over the epoch's batches, L1 penalty included), val_loss, val_<metric> for
each metric of `val_metrics`, seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ladder.config import TrainConfig
from ladder.errors import DataError, LadderError
from ladder.train.callbacks import Callback, EarlyStopping
from ladder.train.optim import build_optimizer, build_scheduler, init_weights, l1_penalty

Metrics = Callable[[np.ndarray, np.ndarray], dict[str, float]]
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


class Trainer:
    """Trains a classifier `module` (inputs -> logits) with cross-entropy, as `config` says.

    Args:
        device: where the module and the data live during training.
        callbacks: extra callbacks; an EarlyStopping is added when `config.early_stopping` is set.
        class_weights: per-class loss weights (n_classes,), e.g. for imbalanced data.
        val_metrics: `(y_true, y_prob) -> {name: value}`; logged as `val_<name>` each epoch.
        train_transform: `(batch, generator) -> batch`, applied to training batches only.
        seed: seeds initialisation, dropout and shuffling; fits on CPU are reproducible.
    """

    def __init__(
        self,
        module: nn.Module,
        config: TrainConfig,
        *,
        device: torch.device | str = "cpu",
        callbacks: Iterable[Callback] = (),
        class_weights: np.ndarray | None = None,
        val_metrics: Metrics | None = None,
        train_transform: Transform | None = None,
        seed: int = 0,
    ) -> None:
        self.module, self.config, self.device = module, config, torch.device(device)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise LadderError("train.precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        self.callbacks = list(callbacks)
        if config.early_stopping is not None and not any(
            isinstance(cb, EarlyStopping) for cb in self.callbacks
        ):
            # first, so that it restores the best weights before other callbacks' on_train_end
            self.callbacks.insert(0, EarlyStopping(config.early_stopping))
        # only callbacks that override on_batch_end are called per batch (it is the hot path)
        self._batch_callbacks = [
            cb for cb in self.callbacks if type(cb).on_batch_end is not Callback.on_batch_end
        ]
        self.class_weights, self.val_metrics = class_weights, val_metrics
        self.train_transform, self.seed = train_transform, seed
        self.history: list[dict[str, float]] = []
        self.epoch = self.step = self.n_train = 0
        self.stop_training = False
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.generator = torch.Generator().manual_seed(seed)
        self._loss_weight: torch.Tensor | None = None

    # ------------------------------------------------------------------------- the loop

    def fit(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        sample_weights: np.ndarray | None = None,
    ) -> list[dict[str, float]]:
        """Train for `config.epochs` epochs (or until a callback stops it); returns the history.

        With `sample_weights`, each epoch draws len(X_train) rows with replacement, with
        probability proportional to the weights, instead of shuffling.
        """
        cfg = self.config
        X, y = self._tensors(X_train, y_train, "training")
        val = self._tensors(X_val, y_val, "validation") if X_val is not None else None
        weights = self._check_sample_weights(sample_weights, len(X))
        self.n_train, self.step, self.stop_training, self.history = len(X), 0, False, []

        torch.manual_seed(self.seed)  # initialisation and dropout
        self.generator.manual_seed(self.seed)  # shuffling, sampling and train_transform
        init_weights(self.module, cfg.init)
        self.module.to(self.device)
        self._loss_weight = self._class_weight_tensor()
        self.optimizer = build_optimizer(self.module, cfg.optimizer)
        steps = len(self._batches(torch.arange(len(X))))
        self.scheduler = build_scheduler(self.optimizer, cfg.scheduler, cfg.epochs, steps)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None

        self._notify("on_train_begin")
        try:
            for epoch in range(1, cfg.epochs + 1):
                self.epoch = epoch
                log = self.run_single_epoch(X, y, val, weights)
                self.history.append(log)
                self._notify("on_epoch_end", log)
                if self.stop_training:
                    break
        finally:
            self._notify("on_train_end")
        return self.history

    def run_single_epoch(
        self,
        X: torch.Tensor,
        y: torch.Tensor,
        val: tuple[torch.Tensor, torch.Tensor] | None,
        sample_weights: torch.Tensor | None,
    ) -> dict[str, float]:
        """One pass over the training data, then validation; returns the epoch's log row."""
        self._notify("on_epoch_begin")
        start = time.perf_counter()
        self.module.train()
        if sample_weights is None:
            order = torch.randperm(len(X), generator=self.generator)
        else:  # WeightedRandomSampler semantics
            order = torch.multinomial(
                sample_weights, len(X), replacement=True, generator=self.generator
            )
        order = order.to(self.device)  # one copy per epoch, not one per batch
        losses, sizes = [], []  # kept as tensors: no device sync (.item()) per batch
        for idx in self._batches(order):
            xb, yb, n = X[idx], y[idx], idx.shape[0]
            if self.train_transform is not None:
                xb = self.train_transform(xb, self.generator)
            loss = self.train_step(xb, yb)
            losses.append(loss)
            sizes.append(n)
            for callback in self._batch_callbacks:
                callback.on_batch_end(self, n, loss)
        counts = torch.tensor(sizes, dtype=torch.float32, device=self.device)
        log = {
            "epoch": self.epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": ((torch.stack(losses) * counts).sum() / counts.sum()).item(),
        }
        if val is not None:
            log.update(self.validation_step(*val))
        log["seconds"] = time.perf_counter() - start
        return log

    def train_step(self, xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
        """Forward, loss (+ L1), backward, clip, optimizer and scheduler step; the detached loss."""
        with self._autocast():
            loss = self.loss_fn(self.module(xb), yb)
        if self.config.l1:
            loss = loss + self.config.l1 * l1_penalty(self.module)
        self.optimizer.zero_grad(set_to_none=True)
        clip = self.config.grad_clip
        if self.scaler is not None:  # fp16: scale the loss so small gradients do not underflow
            self.scaler.scale(loss).backward()
            if clip is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.module.parameters(), clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            if clip is not None:
                nn.utils.clip_grad_norm_(self.module.parameters(), clip)
            self.optimizer.step()
        if self.scheduler is not None:
            self.scheduler.step()
        self.step += 1
        return loss.detach()

    def validation_step(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """val_loss and val_<metric> of the current weights on the validation data."""
        logits = self._logits(X)
        log = {"val_loss": self.loss_fn(logits, y).item()}
        if self.val_metrics is not None:
            prob = torch.softmax(logits, dim=1).cpu().numpy()
            metrics = self.val_metrics(y.cpu().numpy(), prob)
            log.update({f"val_{name}": float(value) for name, value in metrics.items()})
        return log

    def loss_fn(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Cross-entropy (in float32, even under autocast), weighted by the class weights."""
        return F.cross_entropy(logits.float(), y, weight=self._loss_weight)

    # ------------------------------------------------------------------------- inference

    def predict_proba(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, n_classes) for X (eval mode, no gradients)."""
        X_cpu = torch.as_tensor(np.asarray(X, dtype=np.float32))
        logits = self._logits(X_cpu, batch_size)
        return torch.softmax(logits, dim=1).cpu().numpy()

    @torch.no_grad()
    def _logits(self, X: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
        self.module.to(self.device).eval()
        size = batch_size or self.config.batch_size
        out = []
        for start in range(0, len(X), size):
            xb = X[start : start + size].to(self.device, non_blocking=True)
            with self._autocast():
                out.append(self.module(xb).float())
        return torch.cat(out) if out else torch.empty(0, 0, device=self.device)

    # ------------------------------------------------------------------------- helpers

    def _batches(self, order: torch.Tensor) -> list[torch.Tensor]:
        """Index batches of one epoch; a trailing single-row batch is dropped (batchnorm fails)."""
        batches = list(order.split(self.config.batch_size))
        if len(batches) > 1 and len(batches[-1]) == 1:
            batches.pop()
        return batches

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = AUTOCAST_DTYPES.get(self.config.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def _tensors(
        self, X: np.ndarray, y: np.ndarray | None, split: str
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if y is None or len(X) != len(y):
            n_y = "no" if y is None else len(y)
            raise DataError(f"{split} data: {len(X)} rows of X but {n_y} labels")
        if len(X) == 0:
            raise DataError(f"{split} data is empty")
        X_t = torch.as_tensor(np.asarray(X, dtype=np.float32), device=self.device)
        y_t = torch.as_tensor(np.asarray(y, dtype=np.int64), device=self.device)
        return X_t, y_t

    def _check_sample_weights(self, weights: np.ndarray | None, n: int) -> torch.Tensor | None:
        if weights is None:
            return None
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64))
        if w.shape != (n,) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise DataError(
                f"sample_weights: expected {n} finite non-negative weights with a positive sum"
            )
        return w

    def _class_weight_tensor(self) -> torch.Tensor | None:
        if self.class_weights is None:
            return None
        return torch.as_tensor(np.asarray(self.class_weights), dtype=torch.float32).to(self.device)

    def _notify(self, hook: str, *args: object) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args)

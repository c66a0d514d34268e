"""The training loop: `fit` -> `run_single_epoch` -> `train_step` / `validation_step`.

Data arrives as in-memory numpy arrays, is moved to the device once, and batches are taken by
indexing those tensors (no per-sample Dataset calls), so the loop adds little to the cost of
the model's own forward and backward passes. Token ids (integer arrays) stay int64; with a
`TokenBatching` each batch is trimmed to its longest row and rows of similar length are
batched together. Logging, early stopping, checkpoints and progress
bars are callbacks (`ladder.train.callbacks`).

Each epoch's log row: epoch, lr (at the end of the epoch; the schedule steps every optimizer
step), train_loss (mean over the epoch's batches, L1 penalty included), val_loss, val_<metric>
for each metric of `val_metrics`, seconds.

Language models train by steps instead (`fit_steps` -> `run_interval`): `train.max_steps`
optimizer steps over random windows of a token stream on disk (`ladder.train.lm_batches`),
validated every `train.eval_interval` steps; each interval is an epoch to the callbacks and
checkpoints, and its log row adds step and tokens_per_s (training tokens per second).

Each epoch's batch order (each interval's windows) is drawn from a generator seeded by (seed,
epoch): the same on every process and after a resume. Under torch.distributed
(`ladder.train.distributed`) the module is wrapped in DDP (or FSDP), `batch_size` is the global
batch, each process trains on its share of every batch and validates on its share of the
validation data, and the logs are reduced so every process sees the same numbers.
"""

from __future__ import annotations

import contextlib
import functools
import math
import signal
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.config import TrainConfig
from ladder.console import say
from ladder.errors import DataError, LadderError, TrainingInterrupted
from ladder.train import distributed
from ladder.train.batching import TokenBatching
from ladder.train.callbacks import Callback, Checkpoint, EarlyStopping
from ladder.train.checkpoint import StopSignals, load_checkpoint, restore_checkpoint
from ladder.train.lm_batches import VALIDATION_DRAW, TokenWindows
from ladder.train.objective import Classification, LanguageModeling, Objective
from ladder.train.optim import (
    build_optimizer,
    build_scheduler,
    init_weights,
    l1_penalty,
    optimizer_step,
)

Metrics = Callable[[np.ndarray, np.ndarray], dict[str, float]]
Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]
# (logits, labels, rows) -> loss, rows being the batch's indices into the training data
BatchLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
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
        batching: for token-id inputs: trims each batch's padding and buckets by length.
        loss: `(logits, labels, rows) -> loss` replaces cross-entropy on training batches
            (`rows` index the training data, e.g. to look up per-row targets such as a
            teacher's logits); validation keeps plain cross-entropy.
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
        batching: TokenBatching | None = None,
        loss: BatchLoss | None = None,
        objective: Objective | None = None,
    ) -> None:
        self.module, self.config, self.device = module, config, torch.device(device)
        if config.precision == "fp16" and self.device.type != "cuda":
            raise LadderError("train.precision: fp16 needs a CUDA device; use bf16 or fp32 on CPU")
        if config.strategy == "fsdp" and self.device.type != "cuda":
            raise LadderError("train.strategy: fsdp needs CUDA; use ddp on CPU")
        if config.strategy == "fsdp" and config.precision == "fp16":
            raise LadderError("train.precision: fp16 is not supported with fsdp; use bf16")
        callbacks = list(callbacks)
        if config.early_stopping is not None and not any(
            isinstance(cb, EarlyStopping) for cb in callbacks
        ):
            # first, so that it restores the best weights before other callbacks' on_train_end
            callbacks.insert(0, EarlyStopping(config.early_stopping))
        # checkpoints last: they save the other callbacks' state after their on_epoch_end
        self.callbacks = sorted(callbacks, key=lambda cb: isinstance(cb, Checkpoint))
        self.class_weights, self.val_metrics = class_weights, val_metrics
        self.train_transform, self.seed = train_transform, seed
        self.batching, self.loss = batching, loss
        self.objective: Objective = objective if objective is not None else Classification()
        self._lengths: torch.Tensor | None = None  # token counts of the training rows
        self.history: list[dict[str, float]] = []
        # where training is: epoch (1-based), optimizer steps, batches done in the epoch
        self.epoch = self.step = self.batch = self.n_train = 0
        self.n_epochs = config.epochs  # epochs of this fit (fit_steps: eval intervals)
        self.in_epoch = self.stop_training = False
        self.epoch_losses: list[torch.Tensor] = []  # the epoch's batch losses so far
        self.epoch_sizes: list[int] = []
        self.model: nn.Module = module  # what training calls: wrapped (DDP/FSDP), compiled
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.scaler: torch.amp.GradScaler | None = None
        self.generator = torch.Generator().manual_seed(seed)  # for train_transform
        self.rank, self.world_size = 0, 1
        self._loss_weight: torch.Tensor | None = None
        self._no_sync: Callable[[], contextlib.AbstractContextManager] | None = None
        self._active: list[Callback] = self.callbacks
        self._stop = StopSignals()

    # ------------------------------------------------------------------------- the loop

    def fit(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray | None = None,
        y_val: np.ndarray | None = None,
        sample_weights: np.ndarray | None = None,
        resume_from: str | Path | None = None,
    ) -> list[dict[str, float]]:
        """Train for `config.epochs` epochs (or until a callback stops it); returns the history.

        With `sample_weights`, each epoch draws len(X_train) rows with replacement, with
        probability proportional to the weights, instead of shuffling. `resume_from` is a
        checkpoints folder written by the `Checkpoint` callback: training goes on from its
        newest good checkpoint exactly as it would have without the interruption; the model
        identity saved there must equal this trainer's Checkpoint callback's `identity`.
        On SIGTERM or Ctrl-C (main thread only) the current optimizer step is finished,
        Checkpoint callbacks save, and `TrainingInterrupted` is raised.
        """
        X, y = self._tensors(X_train, y_train, "training")
        val = self._tensors(X_val, y_val, "validation") if X_val is not None else None
        if self.batching is not None:
            self._lengths = self.batching.lengths(X)
            if val is not None:  # similar lengths in each validation batch: less padding
                rows = self.batching.sort_by_length(val[0]).to(self.device)
                val = (val[0][rows], val[1][rows])
        weights = self._check_sample_weights(sample_weights, len(X))
        batches = len(distributed.global_batches(torch.arange(len(X)), self.config.batch_size))
        steps = math.ceil(batches / self.config.accumulate_steps)
        run = functools.partial(self.run_single_epoch, X, y, val, weights)
        return self._fit_loop(run, self.config.epochs, len(X), steps, None, resume_from)

    def fit_steps(
        self,
        train: TokenWindows,
        val: TokenWindows | None = None,
        resume_from: str | Path | None = None,
    ) -> list[dict[str, float]]:
        """Train a language model for `config.max_steps` optimizer steps over random windows of
        `train` (`config.batch_size` windows per batch, `config.accumulate_steps` batches per
        step), validating on `config.eval_batches` fixed batches of `val` every
        `config.eval_interval` steps; returns the history, one row per interval.

        To callbacks, checkpoints and early stopping each interval is an epoch; the schedule
        spans `max_steps` (a scheduler's `warmup_epochs` counts intervals). Resume, SIGTERM and
        Ctrl-C work as in `fit`. The objective must be `LanguageModeling`.
        """
        cfg = self.config
        if not isinstance(self.objective, LanguageModeling):
            name = type(self.objective).__name__
            raise LadderError(
                f"fit_steps trains language models: its objective must be "
                f"LanguageModeling, not {name}"
            )
        if cfg.batch_size < distributed.world_size():
            raise LadderError(
                f"train.batch_size {cfg.batch_size} is smaller than the {distributed.world_size()}"
                " processes: each needs at least one window per batch"
            )
        val_starts = None
        if val is not None:
            val_starts = val.starts(self.seed, VALIDATION_DRAW, cfg.eval_batches, cfg.batch_size)
        run = functools.partial(self.run_interval, train, val, val_starts)
        intervals = math.ceil(cfg.max_steps / cfg.eval_interval)
        windows = cfg.eval_interval * cfg.accumulate_steps * cfg.batch_size
        return self._fit_loop(
            run, intervals, windows, cfg.eval_interval, cfg.max_steps, resume_from
        )

    def _fit_loop(
        self,
        run_epoch: Callable[[], dict[str, float]],
        epochs: int,
        n_train: int,
        steps_per_epoch: int,
        total_steps: int | None,
        resume_from: str | Path | None,
    ) -> list[dict[str, float]]:
        """Set up, resume if asked, run `epochs` epochs (or intervals) with their callbacks."""
        saved = None
        if resume_from is not None:
            identity = next(
                (cb.identity for cb in self.callbacks if isinstance(cb, Checkpoint)), None
            )
            saved = load_checkpoint(resume_from, identity)
        self._setup(n_train, epochs, steps_per_epoch, total_steps)
        self._notify("on_train_begin")
        try:
            with self._stop:  # SIGTERM/Ctrl-C set a flag, checked after each optimizer step
                if saved is not None:
                    restore_checkpoint(self, saved)
                    self._say_resumed(saved.path)
                first = self.epoch if self.in_epoch else self.epoch + 1  # resumed: go on
                for epoch in range(first, epochs + 1):
                    if self.stop_training:
                        break
                    self.epoch = epoch
                    log = run_epoch()
                    self.history.append(log)
                    self._notify("on_epoch_end", log)
                    if distributed.any_rank(self._stop.raised):
                        self._interrupt()
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
        """One pass over the training data (the rest of it, when resumed), then validation."""
        if not self.in_epoch:
            self.batch, self.epoch_losses, self.epoch_sizes, self.in_epoch = 0, [], [], True
        self._notify("on_epoch_begin")
        start = time.perf_counter()
        self.model.train()
        batches, loss_weights = self._epoch_batches(len(X), sample_weights)
        accumulate, n = self.config.accumulate_steps, len(batches)
        for i in range(self.batch, n):
            idx = batches[i]
            xb, yb, size = X[idx], y[idx], idx.shape[0]
            if self.batching is not None:
                xb = self.batching.trim(xb)
            if self.train_transform is not None:
                xb = self.train_transform(xb, self.generator)
            if i % accumulate == 0:
                self.optimizer.zero_grad(set_to_none=True)
            step = (i + 1) % accumulate == 0 or i + 1 == n
            loss = self.train_step(xb, yb, loss_weights[i], step, rows=idx)
            self.epoch_losses.append(loss)  # kept as tensors: no device sync (.item()) per batch
            self.epoch_sizes.append(size)
            self.batch = i + 1
            for callback in self._batch_callbacks:
                callback.on_batch_end(self, size, loss)
            if step:
                for callback in self._step_callbacks:
                    callback.on_step_end(self)
                if distributed.any_rank(self._stop.raised):
                    self._interrupt()
        log = {
            "epoch": self.epoch,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": self._mean_train_loss(),
        }
        if val is not None:
            log.update(self.validation_step(*val))
        log["seconds"] = time.perf_counter() - start
        self.in_epoch = False
        return log

    def run_interval(
        self, train: TokenWindows, val: TokenWindows | None, val_starts: np.ndarray | None
    ) -> dict[str, float]:
        """One eval interval of optimizer steps over random windows of `train` (the rest of it,
        when resumed), then validation on the windows at `val_starts`."""
        if not self.in_epoch:
            self.batch, self.epoch_losses, self.epoch_sizes, self.in_epoch = 0, [], [], True
        self._notify("on_epoch_begin")
        start = time.perf_counter()
        self.model.train()
        cfg, accumulate, first = self.config, self.config.accumulate_steps, self.batch
        done_steps = (self.epoch - 1) * cfg.eval_interval
        n = (min(cfg.max_steps, done_steps + cfg.eval_interval) - done_steps) * accumulate
        starts = train.starts(self.seed, self.epoch, n, cfg.batch_size)  # the same on every rank
        mine = distributed.shard_range(cfg.batch_size)
        counts, weights = distributed.share_targets(train.n_targets(starts), accumulate)
        for i in range(first, n):
            x, y = train.batch(starts[i, mine])
            xb, yb = self._on_device(x), self._on_device(y)
            if i % accumulate == 0:
                self.optimizer.zero_grad(set_to_none=True)
            step = (i + 1) % accumulate == 0
            loss = self.train_step(xb, yb, weights[i], step)
            self.epoch_losses.append(loss)  # kept as tensors: no device sync (.item()) per batch
            self.epoch_sizes.append(counts[i])
            self.batch = i + 1
            for callback in self._batch_callbacks:
                callback.on_batch_end(self, len(x), loss)
            if step:
                for callback in self._step_callbacks:
                    callback.on_step_end(self)
                if distributed.any_rank(self._stop.raised):
                    self._interrupt()
        log = {
            "epoch": self.epoch,
            "step": self.step,
            "lr": self.optimizer.param_groups[0]["lr"],
            "train_loss": self._mean_train_loss(),  # waits for the device: the clock is fair
        }
        trained = time.perf_counter() - start
        if val is not None and val_starts is not None:
            log.update(self.window_validation_step(val, val_starts))
        tokens = (n - first) * cfg.batch_size * train.block_size  # all ranks
        log["tokens_per_s"] = tokens / max(trained, 1e-9)
        log["seconds"] = time.perf_counter() - start
        self.in_epoch = False
        return log

    def train_step(
        self,
        xb: torch.Tensor,
        yb: torch.Tensor,
        weight: float = 1.0,
        step: bool = True,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Forward, loss (+ L1), backward of `weight` x loss; with `step`, also clip and step
        the optimizer and schedule (else gradients accumulate). `rows`: the batch's indices
        into the training data (for a `loss` hook). Returns the detached loss."""
        sync = (
            self._no_sync() if self._no_sync is not None and not step else contextlib.nullcontext()
        )
        with sync:  # DDP/FSDP: all-reduce gradients only on a group's last batch
            with self._autocast():
                loss = self.loss_fn(self.model(xb), yb, rows)
            if self.config.l1:
                loss = loss + self.config.l1 * l1_penalty(self.module)
            scaled = loss * weight if weight != 1.0 else loss
            # fp16: scale the loss so that small gradients do not underflow
            (self.scaler.scale(scaled) if self.scaler is not None else scaled).backward()
        if step:
            clip, params = self.config.grad_clip, self.module.parameters()
            optimizer_step(self.optimizer, self.scheduler, self.scaler, params, clip, self.step)
            self.step += 1
        return loss.detach()

    def validation_step(self, X: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """val_loss and val_<metric> of the current weights on the validation data."""
        rows, n_batches = distributed.validation_share(len(X), self.config.batch_size)
        logits, y_part = self._logits(X[rows], n_batches=n_batches), y[rows]
        weight = self._loss_weight
        loss_sum, denominator = self.objective.loss_sum(logits, y_part, weight)
        total = distributed.all_reduce_sum(torch.stack([loss_sum, denominator.float()]))
        log = {"val_loss": (total[0] / total[1]).item()}
        if self.val_metrics is not None:
            predicted = self.objective.predictions(logits).cpu().numpy()
            prob = distributed.all_gather_array(predicted)
            metrics = self.val_metrics(y.cpu().numpy(), prob)
            log.update({f"val_{name}": float(value) for name, value in metrics.items()})
        return log

    @torch.no_grad()
    def window_validation_step(self, val: TokenWindows, starts: np.ndarray) -> dict[str, float]:
        """val_loss: the mean loss over the counted targets of the windows of `val` at `starts`
        (n_batches, batch_size), each process taking its share of every batch's rows."""
        self.module.eval()
        total = torch.zeros(2, device=self.device)
        for rows in starts[:, distributed.shard_range(starts.shape[1])]:
            x, y = val.batch(rows)
            with self._autocast():
                outputs = self.module(self._on_device(x))
            loss_sum, count = self.objective.loss_sum(outputs, self._on_device(y), None)
            total += torch.stack([loss_sum, count])
        total = distributed.all_reduce_sum(total)
        return {"val_loss": (total[0] / total[1]).item()}

    def loss_fn(
        self, logits: torch.Tensor, y: torch.Tensor, rows: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The objective's loss (in float32, even under autocast; cross-entropy weighted by the
        class weights by default); the `loss` hook instead where one is set and the batch's
        `rows` are known."""
        if self.loss is not None and rows is not None:
            return self.loss(logits.float(), y, rows)
        return self.objective.loss(logits, y, self._loss_weight)

    # ------------------------------------------------------------------------- inference

    def predict(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """The objective's predictions for X (eval mode, no gradients): class probabilities
        (N, n_classes), or one value per row (N,) for regression."""
        X_cpu = torch.as_tensor(_as_model_input(X))
        if self.batching is None:
            return self.objective.predictions(self._logits(X_cpu, batch_size)).cpu().numpy()
        rows = self.batching.sort_by_length(X_cpu)  # shortest first: little padding per batch
        predicted = self.objective.predictions(self._logits(X_cpu[rows], batch_size)).cpu()
        return predicted[torch.argsort(rows)].numpy()

    def predict_proba(self, X: np.ndarray, batch_size: int | None = None) -> np.ndarray:
        """Class probabilities (N, n_classes) for X (a classification objective's `predict`)."""
        return self.predict(X, batch_size)

    @torch.no_grad()
    def _logits(
        self, X: torch.Tensor, batch_size: int | None = None, n_batches: int | None = None
    ) -> torch.Tensor:
        self.module.to(self.device).eval()
        size = batch_size or self.config.batch_size
        out = []
        for i in range(n_batches if n_batches is not None else math.ceil(len(X) / size)):
            xb = X[i * size : (i + 1) * size].to(self.device, non_blocking=True)
            if self.batching is not None:
                xb = self.batching.trim(xb)
            with self._autocast():
                out.append(self.module(xb).float())
        return torch.cat(out) if out else torch.empty(0, 0, device=self.device)

    # ------------------------------------------------------------------------- set-up

    def _setup(
        self, n_train: int, epochs: int, steps_per_epoch: int, total_steps: int | None = None
    ) -> None:
        """Seed, initialise, wrap (DDP/FSDP, compile); build optimizer, schedule and scaler."""
        cfg = self.config
        self.rank, self.world_size = distributed.rank(), distributed.world_size()
        self.n_train, self.n_epochs, self.epoch, self.step, self.batch = n_train, epochs, 0, 0, 0
        self.in_epoch = self.stop_training = False
        self.history, self.epoch_losses, self.epoch_sizes = [], [], []
        torch.manual_seed(self.seed)  # initialisation and dropout
        self.generator.manual_seed(self.seed)  # train_transform
        init_weights(self.module, cfg.init)
        self.module.to(self.device)
        self.model, self._no_sync = self.module, None
        if distributed.is_initialized():  # DDP/FSDP; each process its own dropout masks
            self.model, self._no_sync = distributed.parallel(self.module, self.device, cfg)
            torch.manual_seed(self.seed + self.rank)
            self.generator.manual_seed(self.seed + self.rank)
        if cfg.compile:
            self.model = distributed.compile_or_eager(self.model)
        if self.class_weights is not None:
            weights = np.asarray(self.class_weights, dtype=np.float32)
            self._loss_weight = torch.as_tensor(weights, device=self.device)
        self.optimizer = build_optimizer(self.module, cfg.optimizer)
        self.scheduler = build_scheduler(
            self.optimizer, cfg.scheduler, epochs, steps_per_epoch, total_steps
        )
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self._active = [cb for cb in self.callbacks if self.rank == 0 or not cb.main_process_only]
        # only callbacks that override a per-batch hook are called per batch (the hot path)
        self._batch_callbacks = [cb for cb in self._active if _overrides(cb, "on_batch_end")]
        self._step_callbacks = [cb for cb in self._active if _overrides(cb, "on_step_end")]

    def _epoch_batches(
        self, n: int, sample_weights: torch.Tensor | None
    ) -> tuple[list[torch.Tensor], list[float]]:
        """This process's index batches for the epoch, and each batch's loss weight."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        if sample_weights is None:
            order = torch.randperm(n, generator=generator)
        else:  # WeightedRandomSampler semantics
            order = torch.multinomial(sample_weights, n, replacement=True, generator=generator)
        if self.batching is not None and self._lengths is not None:
            size = self.config.batch_size
            order = self.batching.order(order, self._lengths.cpu(), size, generator)
        batches = distributed.global_batches(order.to(self.device), self.config.batch_size)
        return distributed.share_batches(batches, self.config.accumulate_steps)

    def _mean_train_loss(self) -> float:
        """The epoch's mean batch loss, each batch weighted by its size (all processes)."""
        counts = torch.tensor(self.epoch_sizes, dtype=torch.float32, device=self.device)
        total = torch.stack([(torch.stack(self.epoch_losses) * counts).sum(), counts.sum()])
        total = distributed.all_reduce_sum(total)
        return (total[0] / total[1]).item()

    def _on_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":  # pinned: the copy overlaps the previous step's work
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def _say_resumed(self, path: Path) -> None:
        if self.rank != 0:
            return
        where = f"batch {self.batch} of" if self.in_epoch else "the end of"
        say(f"resumed from {path}: {where} epoch {self.epoch}, step {self.step}")

    def _interrupt(self) -> None:
        """After SIGTERM or Ctrl-C (at any process: all stop at the same step): checkpoint
        and raise."""
        saved = [cb.save(self) for cb in self.callbacks if isinstance(cb, Checkpoint)]
        where = f"checkpoint in {saved[0].parent}" if saved else "no Checkpoint callback"
        received = self._stop.received or signal.SIGTERM  # another rank's signal: SIGTERM
        by = "Ctrl-C (SIGINT)" if received == signal.SIGINT else signal.Signals(received).name
        raise TrainingInterrupted(
            f"training stopped by {by} at epoch {self.epoch}, step {self.step} ({where})",
            int(received),
        )

    # ------------------------------------------------------------------------- helpers

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
        X_t = torch.as_tensor(_as_model_input(X), device=self.device)
        y_t = torch.as_tensor(np.asarray(y, dtype=self.objective.target_dtype), device=self.device)
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

    def _notify(self, hook: str, *args: object) -> None:
        for callback in self._active:
            getattr(callback, hook)(self, *args)


def _as_model_input(X: np.ndarray) -> np.ndarray:
    """Token ids stay int64; everything else becomes float32 (contiguous: torch refuses views
    with negative strides, such as X[::-1])."""
    X = np.asarray(X)
    dtype = np.int64 if np.issubdtype(X.dtype, np.integer) else np.float32
    return np.ascontiguousarray(X, dtype=dtype)


def _overrides(callback: Callback, hook: str) -> bool:
    return getattr(type(callback), hook) is not getattr(Callback, hook)

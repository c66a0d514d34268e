"""Callbacks: small objects the Trainer calls at fixed points of the loop (as in skorch).

Every hook is a no-op by default; a callback overrides the ones it needs. A callback may stop
training by setting `trainer.stop_training = True`. A callback with state that exact resume must
restore returns it from `state_dict()` (plain data and tensors; a dict of tensors is saved as
safetensors) and takes it back in `load_state_dict()`. Under torch.distributed a callback with
`main_process_only = True` runs on rank 0 only.
"""

from __future__ import annotations

import csv
import difflib
import io
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch  # noqa: TID253
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ladder import console
from ladder.config import EarlyStoppingConfig
from ladder.errors import LadderError
from ladder.io import atomic_write_text
from ladder.train import distributed
from ladder.train.checkpoint import save_checkpoint

if TYPE_CHECKING:
    from ladder.train.trainer import Trainer


class Callback:
    """Base class: hooks called by the Trainer, all doing nothing."""

    main_process_only = False  # True: under torch.distributed, only rank 0 calls it

    def on_train_begin(self, trainer: Trainer) -> None:
        """Before the first epoch (a resumed run then loads the callbacks' saved states)."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch (also when training stops early or fails)."""

    def on_epoch_begin(self, trainer: Trainer) -> None:
        """Before each epoch's first batch (or the first batch a resumed epoch goes on with)."""

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        """After each epoch, with its log row (epoch, lr, train_loss, val_..., seconds)."""

    def on_batch_end(self, trainer: Trainer, batch_size: int, loss: torch.Tensor) -> None:
        """After each training batch; `loss` is its detached loss tensor (avoid .item())."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After each optimizer step (every `train.accumulate_steps` batches)."""

    def state_dict(self) -> dict[str, Any]:
        """What exact resume must restore (plain data, tensors, dicts of tensors)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` returned."""


class EarlyStopping(Callback):
    """Stops when the monitored log key has not improved for `patience` epochs.

    The weights of the best epoch are restored when training ends; `best_epoch` and
    `best_value` tell which.
    """

    def __init__(self, cfg: EarlyStoppingConfig) -> None:
        self.cfg = cfg
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None
        self._wait = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        self.best_value, self.best_epoch, self._best_state, self._wait = None, None, None, 0

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        value = log.get(self.cfg.monitor)
        if value is None:
            raise LadderError(self._unknown_monitor(log))
        if self._improved(value):
            self.best_value, self.best_epoch, self._wait = value, int(log["epoch"]), 0
            self._best_state = distributed.model_state(trainer.module)  # a CPU copy
            return
        self._wait += 1
        if self._wait >= self.cfg.patience:
            trainer.stop_training = True

    def on_train_end(self, trainer: Trainer) -> None:
        if self._best_state is not None:
            distributed.load_model_state(trainer.module, self._best_state)
            self._best_state = None  # free the copy

    def state_dict(self) -> dict[str, Any]:
        return {
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
            "wait": self._wait,
            "best_weights": self._best_state,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_value, self.best_epoch = state["best_value"], state["best_epoch"]
        self._wait, self._best_state = state["wait"], state["best_weights"]

    def _improved(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.best_value is None:
            return True
        if self.cfg.minimize:
            return value < self.best_value - self.cfg.min_delta
        return value > self.best_value + self.cfg.min_delta

    def _unknown_monitor(self, log: dict[str, float]) -> str:
        monitor, keys = self.cfg.monitor, [k for k in log if k not in ("epoch", "seconds")]
        close = difflib.get_close_matches(monitor, keys, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        if monitor.startswith("val_") and not any(k.startswith("val_") for k in log):
            hint += " (no validation data: add a validation split or set early_stopping: null)"
        return (
            f"train.early_stopping.monitor: unknown key '{monitor}'{hint} "
            f"(available: {', '.join(keys)})"
        )


class History(Callback):
    """Collects the epoch log rows in `rows`; with a `path`, rewrites that CSV every epoch.

    Under torch.distributed only rank 0 writes the file (every rank has the same rows).
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self.rows: list[dict[str, float]] = []

    def on_train_begin(self, trainer: Trainer) -> None:
        self.rows = []

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        self.rows.append(dict(log))
        if self.path is not None and distributed.is_main():
            atomic_write_text(self.path, history_csv(self.rows))

    def state_dict(self) -> dict[str, Any]:
        return {"rows": [dict(row) for row in self.rows]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = [dict(row) for row in state["rows"]]


def history_csv(rows: list[dict[str, Any]]) -> str:
    """The rows as CSV text; columns in order of first appearance."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


class ProgressBar(Callback):
    """Training progress: on a terminal a rich bar per epoch (loss, the monitored validation
    value, samples/s); elsewhere (logs, CI) one plain line per epoch. Nothing when ladder is
    quiet, nor on ranks other than 0. `monitor` defaults to the early-stopping key, else
    val_loss; `label` (e.g. the model's name) starts each plain line.
    """

    main_process_only = True
    REFRESH_SECONDS = 0.25  # how often the shown loss is read from its tensor

    def __init__(self, monitor: str | None = None, label: str = "") -> None:
        self.monitor, self.label = monitor, label
        self._progress: Any = None
        self._lines = False

    def on_train_begin(self, trainer: Trainer) -> None:
        if self.monitor is None:
            stopping = trainer.config.early_stopping
            self.monitor = stopping.monitor if stopping is not None else "val_loss"
        self._epochs = trainer.n_epochs
        self._progress = None
        self._lines = console.verbosity() > console.QUIET and not console.interactive()
        if not console.interactive():
            return
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  {task.fields[val]}  {task.fields[speed]}"),
            console=console.progress_console(),
        )
        self._progress.start()

    def on_epoch_begin(self, trainer: Trainer) -> None:
        if self._progress is None:
            return
        epoch = f"{trainer.epoch}/{self._epochs}"
        self._task = self._progress.add_task(
            "", total=trainer.n_train, epoch=epoch, loss="…", val="", speed=""
        )
        self._start = self._last = time.perf_counter()
        self._seen = 0

    def on_batch_end(self, trainer: Trainer, batch_size: int, loss: torch.Tensor) -> None:
        if self._progress is None:
            return
        self._seen += batch_size
        now = time.perf_counter()
        if now - self._last < self.REFRESH_SECONDS:
            return
        self._last = now
        speed = f"{self._seen / (now - self._start):,.0f} samples/s"
        self._progress.update(
            self._task, completed=self._seen, loss=f"{loss.item():.4f}", speed=speed
        )

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        if self._lines:
            console.say(epoch_line(self.label, trainer.epoch, self._epochs, log))
        if self._progress is None:
            return
        val = log.get(self.monitor)
        speed = f"{self._seen / max(log['seconds'], 1e-9):,.0f} samples/s"
        self._progress.update(
            self._task,
            completed=trainer.n_train,
            loss=f"{log['train_loss']:.4f}",
            val="" if val is None else f"{self.monitor} {val:.4f}",
            speed=speed,
        )

    def on_train_end(self, trainer: Trainer) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


def epoch_line(label: str, epoch: int, epochs: int, log: dict[str, float]) -> str:
    """One epoch as a plain log line: `mlp epoch 3/30: train_loss 0.4123, val_loss ... (1.2 s)`."""
    values = ", ".join(
        f"{key} {_shown(key, value)}"
        for key, value in log.items()
        if key not in ("epoch", "seconds")
    )
    prefix = f"{label} " if label else ""
    return f"{prefix}epoch {epoch}/{epochs}: {values} ({log.get('seconds', 0.0):.1f} s)"


def _shown(key: str, value: float) -> str:
    if key == "lr":
        return f"{value:.4g}"
    if key == "step":
        return str(int(value))
    if key == "tokens_per_s":
        return f"{value:,.0f}"
    return f"{value:.4f}"


class Checkpoint(Callback):
    """Saves the trainer's whole state for exact resume (see `ladder.train.checkpoint`).

    Writes `directory/last/` (keeping the one before as `directory/previous/`) at the end of
    every epoch and every `every_steps` optimizer steps (default: `train.checkpoint_every_steps`;
    None: epochs only). `identity` describes the model (type, hyperparameters, input shape,
    classes: plain JSON data); resuming from this directory with another identity is an error
    naming the differing keys. Under torch.distributed every rank takes part, rank 0 writes.
    """

    def __init__(
        self, directory: str | Path, every_steps: int | None = None, identity: dict | None = None
    ) -> None:
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.identity = identity
        self._every: int | None = every_steps

    def on_train_begin(self, trainer: Trainer) -> None:
        self._every = self.every_steps or trainer.config.checkpoint_every_steps

    def on_step_end(self, trainer: Trainer) -> None:
        if self._every is not None and trainer.step % self._every == 0:
            self.save(trainer)

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        self.save(trainer)

    def save(self, trainer: Trainer) -> Path:
        """Write a checkpoint now; returns the `last` folder."""
        return save_checkpoint(self.directory, trainer, self.identity)

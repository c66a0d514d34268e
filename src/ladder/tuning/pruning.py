"""Pruning of bad neural trials: a Trainer callback that reports each epoch's validation
score to the Optuna trial and stops the trial when the study's pruner says so."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import optuna  # noqa: TID253

from ladder.train.callbacks import Callback

if TYPE_CHECKING:
    from ladder.train.trainer import Trainer


class TrialPruning(Callback):
    """Reports `val_<metric>` (else the validation loss, negated when the study maximizes)
    after each epoch, records the epochs trained as the trial's `epochs` attribute, and raises
    `optuna.TrialPruned` when the pruner stops the trial."""

    main_process_only = True

    def __init__(self, trial: Any, metric: str, maximize: bool) -> None:
        self.trial, self.metric, self.maximize = trial, metric, maximize
        self.epochs = 0

    def on_epoch_end(self, trainer: Trainer, log: dict[str, float]) -> None:
        """Report this epoch's score; prune the trial if the pruner says so."""
        self.epochs += 1
        self.trial.set_user_attr("epochs", self.epochs)
        value = epoch_score(log, self.metric, self.maximize)
        if value is None:
            return
        self.trial.report(value, step=self.epochs)
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {self.epochs} ({value:.4g})")


def epoch_score(log: dict[str, float], metric: str, maximize: bool) -> float | None:
    """An epoch's validation score in the study's direction: the metric itself when the
    epoch logged it, else the validation loss (negated for a maximized metric)."""
    own = log.get(f"val_{metric}")
    if own is not None:
        return float(own)
    loss = log.get("val_loss")
    if loss is None:
        return None
    return -float(loss) if maximize else float(loss)

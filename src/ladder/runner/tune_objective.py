"""What one tuning trial does: pick values from the search space, train the entry with them
on the training split and score it on the validation split (or on K folds of train + val with
`evaluate.cv`). The test split is never touched here."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder import console
from ladder.config import Config, ModelEntry
from ladder.data.dataset import Dataset, Splits
from ladder.errors import ConfigError
from ladder.registry import get_spec
from ladder.runner.ladder import rung_trainer
from ladder.runner.prepare import PreparedData
from ladder.runner.rung import fit_rung, resolve_model_path
from ladder.tasks import get_task
from ladder.train.setup import added_callbacks
from ladder.tuning.space import Param, apply_values, suggest

# rungs scored by fitting and predicting here; the others (generation, seq2seq) by their own
# rung function, which scores its "test" part: the validation part, in a trial's data
LIGHT_TASKS = ("classification", "regression")


@dataclass
class Objective:
    """The study's objective for one model entry (`raw`: the entry as written in the config)."""

    config: Config
    raw: dict[str, Any]
    params: dict[str, Param]
    data: PreparedData  # None only on the way to a worker process, which prepares its own
    metric: str
    maximize: bool
    pruner: str
    work_dir: Path

    def entry(self, values: dict[str, Any], name: str | None = None) -> ModelEntry:
        """The validated model entry with `values` set (called `name` when given)."""
        return entry_with(self.config, self.raw, values, name)

    def __call__(self, trial: Any) -> float:
        """Train with the trial's values; the validation score (the study's metric)."""
        values = suggest(trial, self.params)
        entry = self.entry(values)
        callbacks = []
        if get_spec(entry.type).trains_with_trainer:  # epochs are counted, pruned or not
            from ladder.tuning.pruning import TrialPruning  # noqa: PLC0415  (torch)

            callbacks.append(TrialPruning(trial, self.metric, self.maximize))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        config = only_study_metric(self.config, self.data.task, self.metric)
        with (
            added_callbacks(*callbacks),
            tempfile.TemporaryDirectory(dir=self.work_dir) as tmp,
            console.quieter(),
        ):
            return validation_score(config, entry, self.data, self.metric, Path(tmp))


def only_study_metric(config: Config, task: str, metric: str) -> Config:
    """The config whose networks log only the study's metric (and the loss) on the validation
    split each epoch: a trial needs no other, and multiclass ROC AUC every epoch costs more
    than a small network's epoch."""
    if task != "classification":
        return config
    return config.model_copy(
        update={"evaluate": config.evaluate.model_copy(update={"metrics": [metric]})}
    )


def entry_with(
    config: Config, raw: dict[str, Any], values: dict[str, Any], name: str | None = None
) -> ModelEntry:
    """`raw` (a `models:` entry) with `values` set, validated like any entry of the config."""
    changed = apply_values({k: v for k, v in raw.items() if k != "tune"}, values)
    if name is not None:
        changed["name"] = name
    others = [m for m in config.models if m.get("name") != changed["name"]]
    return config.model_copy(update={"models": [*others, changed]}).model(changed["name"])


def validation_score(
    config: Config, entry: ModelEntry, data: PreparedData, metric: str, work_dir: Path
) -> float:
    """`metric` of `entry` trained on the training split and scored on the validation split;
    with `evaluate.cv` the mean over K folds of train + val."""
    if data.task not in LIGHT_TASKS:
        return _rung_score(config, entry, _scored_on_val(data), metric, work_dir)
    if config.evaluate.cv:
        scores = [
            _fit_score(config, entry, fold, metric, work_dir / f"fold{k}")
            for k, fold in enumerate(cv_folds(data, config.evaluate.cv, config.seed), 1)
        ]
        return float(np.mean(scores))
    return _fit_score(config, entry, _scored_on_val(data), metric, work_dir)


def check_scoring_split(config: Config, data: PreparedData) -> None:
    """Trials need held-out rows that are not the test split: a validation split, or K folds
    of train + val (`evaluate.cv`, tables only)."""
    if data.splits.val or (config.evaluate.cv and data.task in LIGHT_TASKS):
        return
    folds = " (or evaluate.cv: K)" if data.task in LIGHT_TASKS else ""
    raise ConfigError(
        [
            "data.split.val: tuning scores trials on the validation split, and it is empty; "
            f"set data.split.val > 0{folds}"
        ]
    )


def _scored_on_val(data: PreparedData) -> PreparedData:
    """The data with its validation split in the place of the test split."""
    return replace(data, splits=replace(data.splits, test=data.splits.val))


def _fit_score(
    config: Config, entry: ModelEntry, data: PreparedData, metric: str, work_dir: Path
) -> float:
    """Fit on the training split, predict the (validation) test split, compute `metric`."""
    fit = fit_rung(config, resolve_model_path(config, entry), data, work_dir, checkpoints=False)
    outputs = fit.task.predict(fit.fitted, fit.x_test)
    metrics = fit.task.metrics(data.splits.test.y, outputs, data.labels)
    return _metric(metrics, metric)


def _rung_score(
    config: Config, entry: ModelEntry, data: PreparedData, metric: str, work_dir: Path
) -> float:
    """Train the entry with its task's own rung function into a scratch run folder."""
    result = rung_trainer(data)(config, entry, data, work_dir)
    return _metric(result.metrics, metric)


def _metric(metrics: dict[str, Any], metric: str) -> float:
    """The named metric, or a one-line error listing those there are."""
    if metric not in metrics or not isinstance(metrics[metric], int | float):
        numeric = [k for k, v in metrics.items() if isinstance(v, int | float)]
        raise ConfigError([f"tune.metric: no metric {metric!r} (metrics: {', '.join(numeric)})"])
    return float(metrics[metric])


def cv_folds(data: PreparedData, k: int, seed: int) -> list[PreparedData]:
    """K folds of the training and validation rows: each fold scores (and early-stops) on
    its held-out rows; the test split is left out."""
    from sklearn.model_selection import KFold, StratifiedKFold

    splits = data.splits
    joined = _joined(splits.train, splits.val) if splits.val else splits.train
    kind = StratifiedKFold if data.task == "classification" else KFold
    splitter = kind(n_splits=k, shuffle=True, random_state=seed)
    out = []
    for train_rows, held_rows in splitter.split(np.zeros(len(joined)), joined.y):
        held = joined.subset(held_rows)
        out.append(replace(data, splits=Splits(joined.subset(train_rows), held, held)))
    return out


def _joined(a: Dataset, b: Dataset) -> Dataset:
    """The rows of `a` then those of `b`."""
    if isinstance(a.X, pd.DataFrame):
        X: Any = pd.concat([a.X, b.X], ignore_index=True)
    else:
        X = np.concatenate([a.X, b.X])
    return replace(a, X=X, y=np.concatenate([a.y, b.y]))


def task_metric(config: Config, task_name: str, setting: str | None) -> tuple[str, bool]:
    """The metric a study optimizes (`tune.metric`, else `evaluate.primary`, else the task's
    primary) and whether it is maximized."""
    task = get_task(task_name, config.evaluate.primary)
    metric = setting or config.evaluate.primary or task.default_primary
    return metric, metric not in task.lower_is_better

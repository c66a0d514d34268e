"""`evaluate.cv: K`: stratified K-fold cross-validation instead of one split.

Each fold is a run folder of its own under `RUN_DIR/folds/foldK/` (the same layout as a one-split
run), so every model of every fold is trained, cached and timed exactly as `ladder run` does.
The run's leaderboard holds the mean over folds; `cv.csv` holds mean and std of each metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd  # noqa: TID253

from ladder.config import Config
from ladder.data import describe_data, load_dataset, split_dataset
from ladder.evaluate.compare import build_leaderboard, pareto_front
from ladder.io import atomic_write_text
from ladder.runner.prepare import PreparedData
from ladder.tasks import Task
from ladder.tasks.classification import CLASSIFICATION

METRICS = ("accuracy", "f1_macro", "roc_auc", "log_loss", "train_seconds", "latency_ms")
REGRESSION_CV_METRICS = ("rmse", "mae", "r2", "mape", "train_seconds", "latency_ms")


def folds(config: Config) -> Iterator[Any]:
    """The K folds as `PreparedData`: each fold's test rows once, train/val from the rest."""
    from sklearn.model_selection import KFold, StratifiedKFold

    data_cfg = config.data.model_copy(update={"source": config.resolve_path(config.data.source)})
    dataset = load_dataset(data_cfg)
    kind = StratifiedKFold if dataset.task == "classification" else KFold  # regression: plain
    splitter = kind(n_splits=config.evaluate.cv, shuffle=True, random_state=config.seed)
    for train_rows, test_rows in splitter.split(np.zeros(len(dataset)), dataset.y):
        test = dataset.subset(test_rows)
        splits = split_dataset(dataset.subset(train_rows), data_cfg.split, config.seed, test=test)
        info = describe_data(splits, data_cfg.source)
        yield PreparedData(splits, list(dataset.labels), data_cfg.source, info, dataset.task)


def summarize(
    fold_boards: list[pd.DataFrame], run_dir: Path, primary: str, task: Task = CLASSIFICATION
) -> pd.DataFrame:
    """The mean leaderboard over folds (CI columns: mean -/+ one std) and `cv.csv` beside it.

    The paired test (McNemar; regression: t-test on squared errors) compares the pooled
    out-of-fold predictions of each model with the best.
    """
    metrics = METRICS if task.name == "classification" else REGRESSION_CV_METRICS
    headline, paired = task.delta_metric, task.paired_column

    stacked = pd.concat(fold_boards, keys=range(len(fold_boards)), names=["fold"])
    numeric = stacked.select_dtypes("number").columns.drop([paired], errors="ignore")
    grouped = stacked.groupby("model", sort=False)
    mean, std = grouped[list(numeric)].mean(), grouped[list(numeric)].std(ddof=1)
    summary = pd.concat(
        {
            "mean": mean[[m for m in metrics if m in mean]],
            "std": std[[m for m in metrics if m in std]],
        },
        axis=1,
    )
    summary.columns = [f"{metric}_{stat}" for stat, metric in summary.columns]
    atomic_write_text(run_dir / "cv.csv", summary.reset_index().to_csv(index=False))

    rows = []
    for model, group in grouped:
        ok = group["status"].isin(["ok", "cached"]).all()
        row = {"model": model, "type": group["type"].iloc[0], **mean.loc[model].to_dict()}
        spread = std.loc[model, headline] if headline in std else np.nan
        row[f"{headline}_ci_low"] = row.get(headline, np.nan) - spread
        row[f"{headline}_ci_high"] = row.get(headline, np.nan) + spread
        row["status"] = f"ok ({len(group)}-fold cv)" if ok else "; ".join(group["status"].unique())
        rows.append(row)
    board = build_leaderboard(rows, primary, task.leaderboard_columns, task.lower_is_better)

    pooled = _pooled_predictions(run_dir, list(board["model"]), len(fold_boards))
    if pooled:
        best = next(m for m in board["model"] if m in pooled)
        truth, best_pred = pooled[best]
        board[paired] = [
            task.paired_p(truth, best_pred, pooled[m][1]) if m in pooled else np.nan
            for m in board["model"]
        ]
        sign = -1 if headline in task.lower_is_better else 1
        score = [sign * value for value in board[headline]]
        board["pareto"] = pareto_front(score, list(board["latency_ms"]))
    return board


def _pooled_predictions(run_dir: Path, models: list[str], k: int) -> dict[str, tuple[Any, Any]]:
    """Each model's out-of-fold (y_true, y_pred) over all folds, where every fold has them."""
    pooled = {}
    for model in models:
        files = [
            run_dir / "folds" / f"fold{i + 1}" / "models" / model / "test_predictions.csv"
            for i in range(k)
        ]
        if all(f.exists() for f in files):
            frame = pd.concat([pd.read_csv(f) for f in files])
            pooled[model] = (frame["y_true"].to_numpy(), frame["y_pred"].to_numpy())
    return pooled

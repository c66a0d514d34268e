"""The data of a run: loaded and split once (seeded), described, and recorded in the run folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder import __version__
from ladder.config import Config, dump_config
from ladder.console import say
from ladder.data import describe_data, load_dataset, split_dataset
from ladder.errors import DataError
from ladder.io import atomic_write_text
from ladder.tasks import get_task
from ladder.tasks.options import with_task


@dataclass
class PreparedData:
    """The data of a run, loaded and split once, shared by every model."""

    splits: Any
    labels: list[Any]
    source: str
    info: dict[str, Any]
    task: str = "classification"


def prepare_data(config: Config) -> PreparedData:
    """Load the config's data (and test_source), split it (seeded) and describe it."""
    data_cfg = config.data.model_copy(update={"source": config.resolve_path(config.data.source)})
    dataset = load_dataset(data_cfg)
    data_cfg = data_cfg.model_copy(update={"task": dataset.task})  # the test set: the same task
    test = (
        load_dataset(data_cfg, config.resolve_path(data_cfg.test_source))
        if data_cfg.test_source
        else None
    )
    splits = split_dataset(dataset, data_cfg.split, config.seed, test=test)
    info = describe_data(splits, data_cfg.source)
    if test is not None:
        info["dropped_non_finite"] += test.dropped_non_finite
    if dataset.task_reason:
        say(dataset.task_reason)
    return PreparedData(splits, list(dataset.labels), data_cfg.source, info, dataset.task)


def prepare(config: Config) -> tuple[Config, PreparedData]:
    """The config's data prepared, and the config completed for the data's task (`data.task`
    decided, the task's default metrics filled in); ConfigError naming any option that does
    not fit the task."""
    data = prepare_data(config)
    if data.task == "regression" and config.data.target_transform == "log1p":
        lowest = min(float(np.min(part.y)) for _, part in data.splits.items())
        if lowest < 0:
            raise DataError(
                f"data.target_transform: log1p needs targets >= 0, and {data.source} has "
                f"{lowest:g}; remove target_transform"
            )
    return with_task(config, get_task(data.task)), data


def write_run_files(config: Config, run_dir: Path, data: PreparedData) -> None:
    """The run folder's config.yaml (resolved, with ladder's version) and data.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(config, __version__))
    atomic_write_text(run_dir / "data.json", json.dumps(data.info, indent=2))

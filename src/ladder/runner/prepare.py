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
from ladder.data.corpus import read_corpus, read_prompt_completions
from ladder.data.lm_splits import describe_corpus, scoring_segments, split_examples, split_text
from ladder.data.pairs import describe_pairs, read_pairs, split_pairs
from ladder.errors import DataError
from ladder.io import atomic_write_text
from ladder.tasks import get_task
from ladder.tasks.options import with_task


@dataclass
class PreparedData:
    """The data of a run, loaded and split once, shared by every model."""

    splits: Any  # data.Splits; for generation, data.lm_splits.CorpusSplits
    labels: list[Any]
    source: str
    info: dict[str, Any]
    task: str = "classification"

    def test_inputs(self) -> Any:
        """What a saved model is timed on: the raw test rows, or a language model's prompts
        (the starts of test segments)."""
        if self.task == "generation":
            return [seg.text[:40] for seg in scoring_segments(self.splits.test, target=8)]
        if self.task == "seq2seq":
            return list(self.splits.test.sources[:8])
        return self.splits.test.X


def prepare_data(config: Config) -> PreparedData:
    """Load the config's data (and test_source), split it (seeded) and describe it."""
    if config.data.task == "generation":
        return prepare_corpus(config)
    if config.data.task == "seq2seq":
        return prepare_pairs(config)
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


def prepare_corpus(config: Config) -> PreparedData:
    """The text of a language-model run: read (a text file, a folder of .txt, a table's
    `data.text` column, or prompt/completion .jsonl) and split into contiguous parts."""
    data = config.data
    source = config.resolve_path(data.source)
    split = data.split
    if Path(source).suffix == ".jsonl" and data.text is None:
        splits = split_examples(read_prompt_completions(source), split.val, split.test)
    else:
        splits = split_text(read_corpus(source, data.text), split.val, split.test)
    info = describe_corpus(splits, source)
    parts = ", ".join(f"{name} {n:,}" for name, n in info["bytes"].items())
    say(f"corpus {source}: {splits.kind.replace('_', '/')}, bytes per part: {parts}")
    return PreparedData(splits, [], source, info, "generation")


def prepare_pairs(config: Config) -> PreparedData:
    """The source/target pairs of a seq2seq run: read (a table's source and target columns,
    or two aligned text files), empty ones dropped, split (seeded) with no test source seen in
    training or validation."""
    data = config.data
    source = config.resolve_path(data.source)
    target_file = config.resolve_path(data.target_file) if data.target_file else None
    pairs = read_pairs(source, data.source_column, data.target_column, target_file, data.format)
    splits = split_pairs(pairs, data.split.val, data.split.test, config.seed)
    info = describe_pairs(splits, source)
    counts = ", ".join(f"{name} {len(part.sources):,}" for name, part in splits.items())
    notes = []
    if pairs.dropped_empty:
        notes.append(f"{pairs.dropped_empty:,} with an empty source or target dropped")
    if splits.moved_to_keep_test_clean:
        notes.append(
            f"{splits.moved_to_keep_test_clean:,} moved into test so that no test source is seen "
            "in training or validation"
        )
    if splits.moved_to_keep_val_clean:
        notes.append(
            f"{splits.moved_to_keep_val_clean:,} moved into training so that no validation "
            "source is seen in training"
        )
    say(f"pairs {source}: {counts}" + (f" ({'; '.join(notes)})" if notes else ""))
    return PreparedData(splits, [], source, info, "seq2seq")


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

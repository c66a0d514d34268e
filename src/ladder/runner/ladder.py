"""The whole ladder: train (or reuse) every model of a config on one split or K folds,
compress them, and rank them in a leaderboard and report (`ladder run`, `ladder train`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from ladder.compress.run import apply_compress
from ladder.compress.variant import CompressContext
from ladder.config import Config, ModelEntry, load_config
from ladder.console import RungProgress
from ladder.errors import ConfigError, TrainingInterrupted
from ladder.registry import get_spec
from ladder.run_folder import clear_failure, locked, model_dir, record_failure
from ladder.runner.cache import cached_status, refuse_other_data
from ladder.runner.crossval import folds, summarize
from ladder.runner.lm_rung import train_lm_entry
from ladder.runner.prepare import PreparedData, prepare, write_run_files
from ladder.runner.ranking import RunResult, leaderboard, write_leaderboard
from ladder.runner.rung import TrainResult, rung_device, train_entry
from ladder.runner.s2s_rung import train_s2s_entry
from ladder.tasks import get_task
from ladder.tracking import Tracker, open_tracker
from ladder.train import distributed


def train(
    config_path: str | Path,
    model: str,
    out: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    resume: bool = False,
    wait: bool = False,
) -> TrainResult | None:
    """Load a config file and train one of its models (the library form of `ladder train`)."""
    config = load_config(config_path, overrides)
    return train_model(config, model, out, resume=resume, wait=wait)


def train_model(
    config: Config,
    name: str,
    out: str | Path | None = None,
    resume: bool = False,
    wait: bool = False,
) -> TrainResult | None:
    """Train, evaluate and save the model called `name`; returns its metrics and paths.

    With `resume`, training continues from the model's last checkpoint. Under torchrun every
    worker trains; rank 0 alone writes files and gets the result, the others get None. The
    run folder is locked meanwhile (by the launcher under torchrun); `wait`: for another
    process that holds it.
    """
    entry = config.model(name)
    run_dir = Path(out) if out is not None else Path("runs") / config.name
    config, data = prepare(config)
    lock = nullcontext() if distributed.launched() else locked(run_dir, wait)
    with lock, open_tracker(config, run_dir, "train", f"{config.name} {name}") as tracker:
        if not get_spec(entry.type).trains_with_trainer:
            write_run_files(config, run_dir, data)
            result = rung_trainer(data)(config, entry, data, run_dir, resume=resume)
        else:
            result = _train_neural(config, entry, data, run_dir, resume)
        if result is not None:
            tracker.log_rung(result.model_dir)
        return result


def _train_neural(
    config: Config, entry: ModelEntry, data: PreparedData, run_dir: Path, resume: bool
) -> TrainResult | None:
    """Train a neural entry, in this process or as one of torchrun's workers."""
    joined = distributed.init_from_env(rung_device(config.device, get_spec(entry.type)))
    try:
        main = not joined or distributed.is_main()
        if main:
            write_run_files(config, run_dir, data)
        return rung_trainer(data)(config, entry, data, run_dir, resume=resume, main=main)
    finally:
        if joined:
            distributed.cleanup()


def rung_trainer(data: PreparedData) -> Callable[..., TrainResult | None]:
    """The function that trains one entry on `data`: `train_lm_entry` for a corpus (task
    generation), `train_s2s_entry` for text pairs (seq2seq), else `train_entry`; all take
    (config, entry, data, run_dir, resume=, main=)."""
    if data.task == "generation":
        return train_lm_entry
    return train_s2s_entry if data.task == "seq2seq" else train_entry


def run(
    config_path: str | Path,
    out: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wait: bool = False,
) -> RunResult:
    """Train and compare every model of a config on one split (the library form of `ladder run`)."""
    return run_config(load_config(config_path, overrides), out, only, force, wait)


def run_config(
    config: Config,
    out: str | Path | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wait: bool = False,
) -> RunResult:
    """Train (or reuse) each selected model, then write the leaderboard and the report; the
    run folder is locked meanwhile (`wait`: for another process that holds it)."""
    names = [entry["name"] for entry in config.models]
    unknown = [name for name in only or [] if name not in names]
    if unknown:
        raise ConfigError(
            [f"--only {', '.join(unknown)}: no such model (models: {', '.join(names)})"]
        )
    selected = [name for name in names if not only or name in only]
    entries = {name: config.model(name) for name in names}
    run_dir = Path(out) if out is not None else Path("runs") / config.name

    config, data = prepare(config)
    entries = {name: config.model(name) for name in names}
    with locked(run_dir, wait), open_tracker(config, run_dir, "run") as tracker:
        result = _run_locked(config, entries, selected, data, run_dir, force)
        _track(tracker, result)
        return result


def _track(tracker: Tracker, result: RunResult) -> None:
    """Log each model of the leaderboard that this run trained or reused, compressed variants
    included, then the report."""
    board = result.leaderboard
    for name, state in zip(board["model"], board["status"], strict=True):
        if state in ("ok", "cached") and model_dir(result.run_dir, name).is_dir():
            tracker.log_rung(model_dir(result.run_dir, name))
    tracker.log_report(result.run_dir)


def _run_locked(
    config: Config,
    entries: dict[str, ModelEntry],
    selected: list[str],
    data: PreparedData,
    run_dir: Path,
    force: bool,
) -> RunResult:
    """The body of `run_config`, with the run folder locked."""
    refuse_other_data(run_dir, config, data, force)
    write_run_files(config, run_dir, data)
    if config.evaluate.cv:
        boards, status = [], {}
        for k, fold in enumerate(folds(config), start=1):
            fold_dir = run_dir / "folds" / f"fold{k}"
            write_run_files(config, fold_dir, fold)
            fold_status = _train_rungs(
                config, entries, selected, fold, fold_dir, force, f"fold {k}"
            )
            boards.append(leaderboard(config, entries, fold_status, fold, fold_dir))
            status.update({n: s for n, s in fold_status.items() if n not in status or s != "ok"})
        board = summarize(boards, run_dir, config.evaluate.primary, get_task(config.data.task))
    else:
        status = _train_rungs(config, entries, selected, data, run_dir, force)
        if config.compress:
            trained = [name for name, state in status.items() if state in ("ok", "cached")]
            status.update(_compress(config, entries, data, run_dir, force, trained))
        board = leaderboard(config, entries, status, data, run_dir)
    return write_leaderboard(run_dir, board, status)


def _train_rungs(
    config: Config,
    entries: dict[str, ModelEntry],
    selected: list[str],
    data: PreparedData,
    run_dir: Path,
    force: bool,
    label: str = "",
) -> dict[str, str]:
    """Train each selected model unless cached; a failure is recorded and the others go on."""
    status = {name: cached_status(run_dir, config, entry) for name, entry in entries.items()}
    show = RungProgress(len(selected), label)
    for i, name in enumerate(selected, start=1):
        if status[name] == "cached" and not force:
            show.line(i, name, "cached")
            continue
        show.line(i, name, f"training {entries[name].type}")
        started = time.perf_counter()
        try:
            rung_trainer(data)(config, entries[name], data, run_dir)
            clear_failure(model_dir(run_dir, name))
            status[name] = "ok"
            show.line(i, name, f"done in {time.perf_counter() - started:.1f}s")
        except TrainingInterrupted:
            raise  # the whole run stops (SIGTERM, Ctrl-C); its checkpoint is saved
        except Exception as exc:
            status[name] = f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
            record_failure(model_dir(run_dir, name), exc)
            show.line(i, name, f"{status[name]} (traceback: models/{name}/error.txt)")
    return status


def _compress(
    config: Config,
    entries: dict[str, ModelEntry],
    data: PreparedData,
    run_dir: Path,
    force: bool,
    trained: list[str],
) -> dict[str, str]:
    """The config's compress: section on the `trained` models (variants made before by the
    same method from the same weights are kept unless `force`)."""
    context = CompressContext(config, run_dir, data, entries)
    show = RungProgress(0, "compress").note
    return apply_compress(context, reuse=not force, show=show, trained=trained)

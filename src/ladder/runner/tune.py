"""`ladder tune CONFIG --model NAME`: search one model's hyperparameters with Optuna, then
train the best configuration once and test it; it joins the leaderboard as `NAME (tuned)`
beside the untuned model.

Trials are scored on the validation split (or K folds of train + val with `evaluate.cv`), so
the test split is touched once, by the best configuration. `--jobs K` runs K processes on one
study; many machines share a study through a database (`--storage postgresql://...`). The
default storage is a journal file in the run folder, so an interrupted study resumes.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ladder.config import Config, ModelEntry, load_config, tunable_of
from ladder.console import say
from ladder.errors import ConfigError, LadderError
from ladder.io import atomic_write_text
from ladder.registry import get_spec
from ladder.run_folder import locked, model_dir
from ladder.runner.cache import cached_status
from ladder.runner.ladder import rung_trainer
from ladder.runner.prepare import PreparedData, prepare, write_run_files
from ladder.runner.ranking import RunResult, rank_run
from ladder.runner.tune_objective import Objective, check_scoring_split, entry_with, task_metric
from ladder.tasks import get_task
from ladder.tracking import open_tracker
from ladder.tuning import TUNED_SUFFIX, outputs, tuned_name
from ladder.tuning.defaults import default_space
from ladder.tuning.space import TuneBlock, parse_block, signature
from ladder.tuning.storage import (
    check_reachable,
    close_storage,
    open_storage,
    storage_url,
)
from ladder.tuning.study import count_trials, fail_stale, open_study, run_trials
from ladder.urls import redacted

DEFAULT_TRIALS = 30
WORK = "work"  # the trials' scratch folders


@dataclass
class TuneRequest:
    """What `ladder tune` was asked: the model, and the study's size, place and name."""

    model: str
    trials: int | None = None
    timeout: float | None = None
    jobs: int = 1
    storage: str | None = None
    study: str | None = None


@dataclass
class Search:
    """A resolved search: the space, its settings and the study it runs in."""

    block: TuneBlock
    trials: int
    timeout: float | None
    pruner: str
    metric: str
    maximize: bool
    study: str
    url: str


@dataclass
class TuneResult:
    """What a study found and where it was written."""

    study: str
    metric: str
    best_value: float | None
    best_params: dict[str, Any]
    trials: list[dict[str, Any]]
    tuned_model: str | None
    test: dict[str, Any] | None
    untuned_test: dict[str, Any] | None
    tune_dir: Path
    run: RunResult | None


def tune(
    config_path: str | Path,
    request: TuneRequest,
    out: str | Path | None = None,
    overrides: list[str] | None = None,
) -> TuneResult:
    """Load a config and tune one of its models (the library form of `ladder tune`)."""
    return tune_model(load_config(config_path, overrides), request, out)


def search_block(config: Config, entry: ModelEntry) -> TuneBlock:
    """The model's search: the top-level tune: block (its parameters the model has), then the
    entry's own; with no parameters in either, the type's default space."""
    known = tunable_of(entry.type)
    top_raw = {
        k: v for k, v in (config.tune or {}).items() if not isinstance(v, dict) or k in known
    }
    problems: list[str] = []
    top = parse_block(top_raw, known, "tune", problems)
    if problems or top is None:
        raise ConfigError(problems)
    block = top.merged(entry.tune or TuneBlock({}, {}))
    if not block.params:
        defaults = parse_block(default_space(entry.type), known, f"{entry.type} default", problems)
        if problems or defaults is None:
            raise ConfigError(problems)
        block = TuneBlock(block.settings, defaults.params)
    if not block.params:
        raise ConfigError(
            [
                f"models.{entry.name}.tune: a {entry.type} model has nothing to search; "
                "give parameters in its tune: block"
            ]
        )
    return block


def resolve_search(
    config: Config, entry: ModelEntry, request: TuneRequest, task: str, run_dir: Path
) -> Search:
    """The search of `request` for `entry`: settings from the command line, then the tune:
    blocks, then the defaults (30 trials; median pruning of neural models)."""
    block = search_block(config, entry)
    settings = block.settings
    metric, maximize = task_metric(config, task, settings.get("metric"))
    names = get_task(task, config.evaluate.primary).metric_names
    if names and metric not in names:
        raise ConfigError([f"tune.metric: unknown metric {metric!r} (metrics: {', '.join(names)})"])
    neural = get_spec(entry.type).trains_with_trainer
    if request.jobs < 1:
        raise ConfigError([f"--jobs: expected at least 1, got {request.jobs}"])
    if request.trials is not None and request.trials < 1:
        raise ConfigError([f"--trials: expected at least 1, got {request.trials}"])
    return Search(
        block=block,
        trials=request.trials or settings.get("trials", DEFAULT_TRIALS),
        timeout=request.timeout if request.timeout is not None else settings.get("timeout"),
        pruner=settings.get("pruner", "median" if neural else "none"),
        metric=metric,
        maximize=maximize,
        study=request.study or f"{config.name}-{entry.name}",
        url=storage_url(request.storage, run_dir / "tune"),
    )


def tune_model(config: Config, request: TuneRequest, out: str | Path | None = None) -> TuneResult:
    """Run (or resume) the study of `request.model`, then test its best configuration."""
    entry = config.model(request.model)
    if request.model.endswith(TUNED_SUFFIX):
        raise ConfigError([f"--model {request.model}: tune the original model, not its result"])
    run_dir = Path(out) if out is not None else Path("runs") / config.name
    check_reachable(storage_url(request.storage, run_dir / "tune"))  # before anything is written
    config, data = prepare(config)
    check_scoring_split(config, data)
    search = resolve_search(config, entry, request, data.task, run_dir)
    raw = next(m for m in config.models if m.get("name") == entry.name)
    tune_dir = run_dir / "tune" / entry.name
    objective = Objective(
        config,
        raw,
        search.block.params,
        data,
        search.metric,
        search.maximize,
        search.pruner,
        tune_dir / WORK,
    )
    journal = search.url.startswith("journal:")
    with (
        ExitStack() as stack,
        open_tracker(config, run_dir, "tune", label=f"tune {entry.name}") as tracker,
    ):
        # a journal study belongs to this run folder: its lock keeps one process on it, so
        # trials left running are an interrupted run's; a database study is shared
        with locked(run_dir) if journal else nullcontext():
            study = _open(search, config.seed)
            stack.callback(close_storage, study._storage)
            write_run_files(config, run_dir, data)
            if journal:
                stale = fail_stale(study, "interrupted: the process running it stopped")
                if stale:
                    say(f"{stale} trial(s) of an interrupted run marked failed")
            _run(study, objective, search, request.jobs, config.seed)
        with locked(run_dir, wait=True):
            return _finish(config, entry, raw, data, search, study, run_dir, tune_dir, tracker)


def _open(search: Search, seed: int) -> Any:
    """Open the study of `search` in its storage."""
    space = signature(search.block.params)
    return open_study(
        open_storage(search.url), search.study, search.maximize, space, seed, search.pruner
    )


def _run(study: Any, objective: Objective, search: Search, jobs: int, seed: int) -> None:
    """Run trials here and in `jobs - 1` more processes until the study is full."""
    done = count_trials(study, running=False)
    say(
        f"study {search.study} ({redacted(search.url)}): {done} of {search.trials} trials "
        f"done; {search.metric} on the validation split, "
        f"{'maximized' if search.maximize else 'minimized'}"
    )
    with _threads_per_job(jobs):
        context = multiprocessing.get_context("spawn")
        workers = [
            # each process samples with a seed of its own: with one seed, they would start by
            # drawing the same values
            # they get the config, not the data: a small message that start() hands over at
            # once (the data would block this process until the child had imported ladder)
            context.Process(target=_worker, args=(replace(objective, data=None), search, seed + k))
            for k in range(1, jobs)
        ]
        for worker in workers:
            worker.start()
        try:
            run_trials(study, objective, search.trials, search.timeout, _reporter(search))
        finally:
            for worker in workers:
                worker.join()
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        say(f"{len(failed)} worker process(es) stopped with an error (exit codes {failed})")


def _worker(objective: Objective, search: Search, seed: int) -> None:
    """One more process running trials of the same study (`--jobs`); it reads and splits the
    data itself."""
    objective = replace(objective, data=prepare(objective.config)[1])
    study = _open(search, seed)
    try:
        run_trials(study, objective, search.trials, search.timeout, _reporter(search))
    finally:
        close_storage(study._storage)


def _reporter(search: Search) -> Any:
    """One line per finished trial."""

    def report(trial: Any) -> None:
        state = trial.state.name.lower()
        what = f"{search.metric} {trial.value:.4f}" if trial.value is not None else state
        error = trial.user_attrs.get("error")
        say(f"trial {trial.number}: {what}" + (f" ({error})" if error else ""))

    return report


@contextmanager
def _threads_per_job(jobs: int) -> Iterator[None]:
    """Each of `jobs` processes gets an equal share of the cores: the processes started inside
    the block (through the environment) and this one (torch's and the BLAS/OpenMP pools)."""
    if jobs <= 1:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits  # noqa: PLC0415  (comes with scikit-learn)

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    share = max(1, (cores or 1) // jobs)
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    saved = {n: os.environ.get(n) for n in names}
    os.environ.update({n: str(share) for n in names})
    threads = torch.get_num_threads()
    torch.set_num_threads(share)
    try:
        with threadpool_limits(share):
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        torch.set_num_threads(threads)


def _finish(
    config: Config,
    entry: ModelEntry,
    raw: dict[str, Any],
    data: PreparedData,
    search: Search,
    study: Any,
    run_dir: Path,
    tune_dir: Path,
    tracker: Any,
) -> TuneResult:
    """Write the study's outputs, train and test the best configuration as `NAME (tuned)`
    (and the untuned model when it is not in the run yet), and rank the run."""
    params = search.block.params
    records = outputs.trial_records(study, params)
    tracker.log_trials(entry.name, search.metric, records)
    summary: dict[str, Any] = {
        "study": search.study,
        "storage": redacted(search.url),
        "direction": "maximize" if search.maximize else "minimize",
        "metric": search.metric,
        "best_value": None,
        "best_trial": None,
        "best_params": {},
        "n_trials": len(records),
        "states": _count_states(records),
        "space": {name: param.describe() for name, param in params.items()},
        "pruner": search.pruner,
        "tuned_model": None,
        "test": None,
        "untuned_test": None,
    }
    complete = [r for r in records if r["state"] == "COMPLETE"]
    if not complete:
        outputs.write_outputs(tune_dir, records, params, summary, None, {})
        errors = [r["error"] for r in records if r["error"]]
        first = f"; the first error: {errors[0]}" if errors else ""
        raise LadderError(
            f"study {search.study}: no trial completed ({len(records)} trials{first}); "
            f"see {tune_dir / outputs.TRIALS_FILE}"
        )
    best = max(complete, key=lambda r: r["value"] if search.maximize else -r["value"])
    values = best["params"]
    tuned = tuned_name(entry.name)
    untuned_metrics = _ensure_trained(config, entry, data, run_dir)
    tuned_metrics = _train_tuned(config, raw, values, tuned, data, run_dir, best, search)
    summary.update(
        best_value=best["value"],
        best_trial=best["number"],
        best_params=values,
        tuned_model=tuned,
        test=_scalars(tuned_metrics),
        untuned_test=_scalars(untuned_metrics),
    )
    note = (
        f"the best of {len(records)} trials of study {search.study}: {search.metric} "
        f"{best['value']:.4f} on the validation split (trial {best['number']})"
    )
    snippet = outputs.best_snippet(raw, values, note)
    importance = outputs.importances(study, config.seed)
    outputs.write_outputs(tune_dir, records, params, summary, snippet, importance)
    shutil.rmtree(tune_dir / WORK, ignore_errors=True)
    run = _rank(config, data, run_dir)
    tracker.log_rung(model_dir(run_dir, tuned))
    tracker.log_report(run_dir)
    return TuneResult(
        search.study,
        search.metric,
        best["value"],
        values,
        records,
        tuned,
        summary["test"],
        summary["untuned_test"],
        tune_dir,
        run,
    )


def _ensure_trained(
    config: Config, entry: ModelEntry, data: PreparedData, run_dir: Path
) -> dict[str, Any]:
    """The untuned model's test metrics, training it first when the run lacks it."""
    if cached_status(run_dir, config, entry) != "cached":
        say(f"{entry.name}: training the untuned model for comparison")
        rung_trainer(data)(config, entry, data, run_dir)
    return _read_metrics(model_dir(run_dir, entry.name))


def _train_tuned(
    config: Config,
    raw: dict[str, Any],
    values: dict[str, Any],
    name: str,
    data: PreparedData,
    run_dir: Path,
    best: dict[str, Any],
    search: Search,
) -> dict[str, Any]:
    """Train the best values once on the training split, test them, and mark the model a
    variant of the original (reused when the run already holds the same one)."""
    entry = entry_with(config, raw, values, name)
    folder = model_dir(run_dir, name)
    if cached_status(run_dir, config, entry) != "cached":
        say(f"{name}: training the best values of trial {best['number']}, tested once")
        rung_trainer(data)(config, entry, data, run_dir)
    metrics = _read_metrics(folder)
    metrics["variant_of"] = raw["name"]
    metrics["model_type"] = entry.type
    metrics["tuned"] = {"study": search.study, "trial": best["number"], "params": values}
    atomic_write_text(folder / "metrics.json", json.dumps(metrics, indent=2))
    return metrics


def _rank(config: Config, data: PreparedData, run_dir: Path) -> RunResult:
    """The run's leaderboard and report with every model it holds (the tuned ones as
    variants of their originals)."""
    entries = {m["name"]: config.model(m["name"]) for m in config.models}
    status = {name: cached_status(run_dir, config, e) for name, e in entries.items()}
    return rank_run(config, entries, status, data, run_dir)


def _read_metrics(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "metrics.json").read_text())


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numeric test metrics (no matrices, hashes or nested details)."""
    return {
        k: v
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and k != "params"
    }


def _count_states(records: list[dict[str, Any]]) -> dict[str, int]:
    return dict(Counter(record["state"] for record in records))

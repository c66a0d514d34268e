"""A study of one model: created or reopened by name (refused when its search space
differs), a seeded TPE sampler and a pruner, and the loop that runs trials until the study
holds the asked number or the time is up. Many processes, on one machine or many, may run the
loop on the same study."""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import optuna  # noqa: TID253
from optuna.storages._heartbeat import (  # noqa: TID253  (what Study.optimize uses)
    get_heartbeat_thread,
    is_heartbeat_enabled,
)

from ladder import console
from ladder.errors import LadderError, TrainingInterrupted

SPACE_ATTR = "ladder_space"
FINISHED = ("COMPLETE", "PRUNED", "FAIL")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """The pruner called `name`: median (after 5 trials and 2 epochs), hyperband, or none."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def open_study(
    storage: Any, name: str, maximize: bool, space: str, seed: int, pruner: str
) -> optuna.Study:
    """Create the study `name`, or load it when it exists with the same search space (`space`:
    its canonical JSON) and direction; another space is refused (pick a new `--study`)."""
    if console.verbosity() < console.VERBOSE:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    direction = "maximize" if maximize else "minimize"
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction=direction,
        sampler=sampler,
        pruner=make_pruner(pruner),
        load_if_exists=True,
    )
    saved = study.user_attrs.get(SPACE_ATTR)
    if saved is None:
        study.set_user_attr(SPACE_ATTR, space)
    elif saved != space:
        raise LadderError(
            f"--study {name}: this study exists with another search space; "
            "pick a new name with --study NAME (or tune the same space)"
        )
    if study.direction.name.lower() != direction:
        raise LadderError(
            f"--study {name}: this study {study.direction.name.lower()}s its metric; this "
            f"search would {direction} it; pick a new name with --study NAME"
        )
    return study


def count_trials(study: optuna.Study, running: bool = True) -> int:
    """The study's finished trials (with `running`: and those under way)."""
    states = [*FINISHED, "RUNNING"] if running else list(FINISHED)
    return sum(t.state.name in states for t in study.get_trials(deepcopy=False))


def fail_stale(study: optuna.Study, why: str) -> int:
    """Mark the study's RUNNING trials failed (a journal study's trials that an interrupted
    process left behind: nobody else runs them); returns how many."""
    stale = [t for t in study.get_trials(deepcopy=False) if t.state.name == "RUNNING"]
    for trial in stale:
        study._storage.set_trial_user_attr(trial._trial_id, "error", why)
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
    return len(stale)


def run_trials(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    target: int,
    timeout: float | None = None,
    on_trial: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> int:
    """Ask and run trials until the study holds `target` trials (finished or under way, by
    every process) or `timeout` seconds pass; a trial that raises is recorded as failed with
    its error (attribute `error`) and the loop goes on. Returns the trials this call ran."""
    deadline = math.inf if timeout is None else time.monotonic() + timeout
    ran = 0
    while count_trials(study) < target and time.monotonic() < deadline:
        _fail_quiet_trials(study)
        with warnings.catch_warnings():  # the heartbeat thread below does what it asks for
            warnings.filterwarnings("ignore", "Heartbeat of storage is supposed to be used")
            trial = study.ask()
        started = time.perf_counter()
        with get_heartbeat_thread(trial._trial_id, study._storage):
            state, value, error = _attempt(objective, trial)
        trial.set_user_attr("duration_s", round(time.perf_counter() - started, 3))
        if error is not None:
            trial.set_user_attr("error", error)
        frozen = study.tell(trial, value, state=state)
        ran += 1
        if on_trial is not None:
            on_trial(frozen)
    return ran


def _fail_quiet_trials(study: optuna.Study) -> None:
    """A database study fails the trials whose process stopped sending heartbeats (as
    `Study.optimize` does before each trial)."""
    if not is_heartbeat_enabled(study._storage):
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _attempt(
    objective: Callable[[optuna.Trial], float], trial: optuna.Trial
) -> tuple[optuna.trial.TrialState, float | None, str | None]:
    """Run one trial: its state, value and error (an interruption fails it and goes up)."""
    states = optuna.trial.TrialState
    try:
        value = objective(trial)
    except optuna.TrialPruned:
        return states.PRUNED, None, None
    except (KeyboardInterrupt, SystemExit, TrainingInterrupted):
        trial.study.tell(trial, state=states.FAIL)
        raise
    except Exception as exc:
        return states.FAIL, None, f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
    if value is None or not math.isfinite(value):
        return states.FAIL, None, f"the objective gave {value!r}"
    return states.COMPLETE, float(value), None

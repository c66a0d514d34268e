"""Claims of `ladder tune` (Optuna hyperparameter search), side by side in one run:

1. tuned beats untuned: 30 trials of each rung's default search space (`ladder list --tune`)
   for the MLP and the GBDT rung of examples/digits.yaml (builtin:digits, accuracy) and
   examples/diabetes.yaml (examples/diabetes.csv, RMSE), each config as written with only that
   entry (the untuned model is the entry as written): the test metric of both with its 95%
   bootstrap interval, and the leaderboard's paired test (McNemar; regression: a t-test on the
   squared errors) of the worse of the two against the better. Once with the trials scored on
   the validation split, once on `--cv` folds of the training and validation rows
   (`evaluate.cv`; the test split is the same held-out split both times);
2. median pruning trains >= 40% fewer epochs than no pruning, over the same number of MLP
   trials on digits (same seed, same space), at a best validation score within noise (the
   binomial standard error on the validation rows, and the spread of the best configuration's
   validation score retrained with other seeds). Two epoch budgets: the example's train block
   (30 epochs, early stopping with patience 5) and 30 epochs without early stopping, where
   pruning is the only thing that cuts a bad trial short. The epochs of every trial are counted
   by a Trainer callback (`ladder.train.setup.added_callbacks`) and checked against the
   `epochs` column of trials.csv where that column is filled;
3. `--jobs 2` runs >= 1.7x the trials per minute of `--jobs 1` on 2 cores for a
   single-threaded classical rung: random_forest on digits (scikit-learn's
   HistGradientBoosting runs OpenMP threads itself, so it cannot show process parallelism).
   Trials per minute of the trial phase (first trial's start to last trial's end, from the
   study's journal) and of the whole `tune()` call (which also trains the untuned and the tuned
   model once). Measured on a space where every trial does the same work (200 trees on half
   the features; only min_samples_leaf searched), so that the two studies' trials cost the
   same, and on the default space (50-400 trees on 1/8 to all features), where they do not;
4. against Optuna by hand: the loop a user writes today (`optuna.create_study` with
   `TPESampler(seed=0)`, an objective fitting `HistGradientBoostingClassifier` with the same
   parameter names and ranges as ladder's gradient_boosting space, on the same training and
   validation rows through ladder's fitted preprocessing, scoring validation accuracy) against
   ladder's study of the same space and trial budget: the best validation score (equal: TPE
   proposes the same values, checked trial by trial) and the mean time per trial, measured
   around the objective call on both sides (ladder's trials.csv duration_s); overhead =
   ladder / hand - 1 <= 5%. The same for the MLP: ladder's own MLP module trained by a plain
   PyTorch loop (AdamW, the same epochs and batches, the same seeds) against ladder's MLP
   study without pruning, with a train block that loop can copy (no schedule, no early
   stopping, PyTorch's initialisation).

One torch thread by default (`--threads 1`; 2-core machines). MLflow tracking is switched
off ($MLFLOW_TRACKING_URI unset) so that it does not time a server.

Run: .venv/bin/python benchmarks/tune.py [--trials 30] [--parallel-trials 60] [--threads 1] [--cv 5]
     [--claims 1 2 3 4] [--out DIR] [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import torch
import torch.nn.functional as F
import yaml

from ladder import console
from ladder.config import Config, load_config
from ladder.data import fit_preprocessor
from ladder.registry import get_spec
from ladder.runner.fit import as_rows
from ladder.runner.prepare import PreparedData, prepare
from ladder.runner.tune import WORK, TuneRequest, TuneResult, tune
from ladder.runner.tune_objective import entry_with, validation_score
from ladder.tasks import get_task
from ladder.train import History
from ladder.train.callbacks import Callback
from ladder.train.setup import added_callbacks
from ladder.tuning.defaults import default_space
from ladder.tuning.storage import JOURNAL, open_storage

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SEED = 0
GOAL_PRUNED, GOAL_JOBS, GOAL_OVERHEAD = 0.40, 1.7, 0.05
RUNGS = [("digits", "mlp"), ("digits", "boosting"), ("diabetes", "mlp"), ("diabetes", "gbdt")]
TASKS = {"digits": "classification", "diabetes": "regression"}
# claim 2: the example's train block as written, and the same without early stopping
BUDGETS = {"early stopping": {}, "fixed epochs": {"early_stopping": None}}
# claim 3: every trial the same work (only min_samples_leaf is searched)
EVEN_FOREST = {
    "n_estimators": {"choices": [200]},
    "max_features": {"choices": [0.5]},
    "min_samples_leaf": {"low": 1, "high": 3},
}
# claim 4: what a plain PyTorch loop does: AdamW at a constant rate, no early stopping
PLAIN_TRAIN = {
    "epochs": 20,
    "batch_size": 64,
    "optimizer": {"name": "adamw", "lr": 1.0e-3, "weight_decay": 1.0e-4},
    "scheduler": {"name": "none"},
    "init": "default",
    "grad_clip": None,
    "early_stopping": None,
}
# claim 4: ladder's default spaces as a user writes them into an objective by hand
GBDT_SPACE = {
    "learning_rate": {"low": 1.0e-2, "high": 0.3, "log": True},
    "max_iter": {"low": 50, "high": 300, "log": True},
    "max_leaf_nodes": {"low": 8, "high": 64, "log": True},
    "min_samples_leaf": {"low": 5, "high": 50, "log": True},
    "l2_regularization": {"low": 1.0e-6, "high": 1.0, "log": True},
}
HIDDEN = [[64], [128], [256, 128], [512, 256]]


@dataclass
class Settings:
    """How big each part of the benchmark is (`--quick` shrinks everything)."""

    trials: int  # claims 1, 2 and 4
    parallel_trials: int  # claim 3
    epochs: int | None  # replaces train.epochs (None: the configs' own)
    plain_epochs: int  # claim 4's MLP
    budgets: list[str]  # claim 2
    forest_spaces: list[str]  # claim 3: "even" and/or "default"
    seeds: int  # claim 2: seeds of the noise check
    ceiling_fits: int  # claim 3: forests fitted to measure the machine's own parallelism
    parallel_rounds: int  # claim 3: rounds of the even space, the order alternating
    cv: int = 0  # claim 1: also studies scored on K folds of train + val (evaluate.cv); 0: not


def settings(args: argparse.Namespace) -> Settings:
    """The sizes asked on the command line."""
    if args.quick:
        return Settings(2, 4, 3, 3, ["fixed epochs"], ["even"], 2, 2, 1, min(args.cv, 2))
    return Settings(
        args.trials,
        args.parallel_trials,
        None,
        PLAIN_TRAIN["epochs"],
        list(BUDGETS),
        ["even", "default"],
        args.seeds,
        8,
        args.rounds,
        args.cv,
    )


# ----------------------------------------------------------------------------- studies


def example_config(
    example: str,
    model: str,
    train: dict[str, Any] | None = None,
    tune_block: dict[str, Any] | None = None,
    epochs: int | None = None,
) -> dict[str, Any]:
    """examples/<example>.yaml with only its entry `model`, as written (plus a tune: block),
    its data file by absolute path, its train: keys updated by `train` and `epochs`."""
    raw = yaml.safe_load((EXAMPLES / f"{example}.yaml").read_text())
    entry = next(m for m in raw["models"] if m["name"] == model)
    raw["models"] = [{**entry, "tune": tune_block} if tune_block else entry]
    source = raw["data"]["source"]
    if not source.startswith("builtin:"):
        raw["data"]["source"] = str(EXAMPLES / source)
    raw["train"] = {**raw.get("train", {}), **(train or {})}
    if epochs is not None:
        raw["train"]["epochs"] = epochs
    return raw


@dataclass
class Study:
    """One `tune()` call and what it left in its run folder."""

    path: Path  # the config
    run_dir: Path
    model: str
    started: float  # time.time() at the call
    seconds: float  # the whole call
    result: TuneResult
    trials: pd.DataFrame  # trials.csv
    summary: dict[str, Any]  # study.json
    board: pd.DataFrame  # leaderboard.csv, by model


def run_study(out: Path, label: str, config: dict[str, Any], trials: int, jobs: int = 1) -> Study:
    """Write `config` and tune its only model in the run folder out/<label>."""
    path = out / "configs" / f"{label}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    model = config["models"][0]["name"]
    run_dir = out / label
    print(f"  {label}: {trials} trials, --jobs {jobs}", file=sys.stderr, flush=True)
    started, start = time.time(), time.perf_counter()
    result = tune(path, TuneRequest(model=model, trials=trials, jobs=jobs), out=run_dir)
    seconds = time.perf_counter() - start
    return Study(
        path,
        run_dir,
        model,
        started,
        seconds,
        result,
        pd.read_csv(result.tune_dir / "trials.csv"),
        json.loads((result.tune_dir / "study.json").read_text()),
        pd.read_csv(run_dir / "leaderboard.csv").set_index("model"),
    )


def prepared(path: Path) -> tuple[Config, PreparedData]:
    """The config and data exactly as `tune()` prepares them."""
    return prepare(load_config(path))


def _fmt(value: float, digits: int = 4) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# ----------------------------------------------------------------------------- 1. tuned


def claim_tuned(out: Path, s: Settings) -> dict[str, Any]:
    """Tune each rung's default space; the test metric of the untuned and the tuned model."""
    print(f"\n1. tuned vs untuned: {s.trials} trials of each rung's default space")
    rows = []
    scorings = [0, s.cv] if s.cv else [0]
    for (example, model), cv in [(rung, cv) for cv in scorings for rung in RUNGS]:
        config = example_config(example, model, epochs=s.epochs)
        if cv:  # trials scored on K folds of train + val; the test split as before
            config["evaluate"] = {**config.get("evaluate", {}), "cv": cv}
        study = run_study(out, f"tuned-{example}-{model}-cv{cv}", config, s.trials)
        metric, maximize = study.summary["metric"], study.summary["direction"] == "maximize"
        tuned = study.result.tuned_model
        board, paired = study.board, get_task(TASKS[example]).paired_column
        untuned_value, tuned_value = board.loc[model, metric], board.loc[tuned, metric]
        better = tuned_value > untuned_value if maximize else tuned_value < untuned_value
        worse = model if better else tuned
        rows.append(
            {
                "data": example,
                "rung": f"{model} ({board.loc[model, 'type']})",
                "scored": f"{cv} folds" if cv else "val split",
                "metric": metric,
                "untuned": untuned_value,
                "untuned_ci": (
                    board.loc[model, f"{metric}_ci_low"],
                    board.loc[model, f"{metric}_ci_high"],
                ),
                "tuned": tuned_value,
                "tuned_ci": (
                    board.loc[tuned, f"{metric}_ci_low"],
                    board.loc[tuned, f"{metric}_ci_high"],
                ),
                "p": board.loc[worse, paired],
                "paired": paired,
                "better": bool(better),
                "val": study.summary["best_value"],
                "states": study.summary["states"],
                "params": study.summary["best_params"],
                "seconds": study.seconds,
            }
        )
    print(
        f"{'data':<9} {'rung':<28} {'trials on':<10} {'metric':<9} {'untuned [95% CI]':>27} "
        f"{'tuned [95% CI]':>27} {'tuned/untuned':>13} {'p':>7} {'tuned better':>12} "
        f"{'best val':>9} {'trials':>14} {'s':>5}"
    )
    for r in rows:
        states = ", ".join(f"{n} {k.lower()}" for k, n in r["states"].items())
        print(
            f"{r['data']:<9} {r['rung']:<28} {r['scored']:<10} {r['metric']:<9} "
            f"{_fmt(r['untuned']):>7} [{_fmt(r['untuned_ci'][0])}, {_fmt(r['untuned_ci'][1])}] "
            f"{_fmt(r['tuned']):>7} [{_fmt(r['tuned_ci'][0])}, {_fmt(r['tuned_ci'][1])}] "
            f"{r['tuned'] / r['untuned']:>13.3f} {r['p']:>7.3f} "
            f"{'yes' if r['better'] else 'no':>12} {_fmt(r['val']):>9} {states:>14} "
            f"{r['seconds']:>5.0f}"
        )
    print(
        "p: the leaderboard's paired test (mcnemar_p; regression: ttest_p) of the worse of the "
        "two against the better; tuned/untuned: a ratio of the metric (RMSE: lower is "
        "better); best val: the study's best validation score"
    )
    for r in rows:
        params = ", ".join(f"{k}={_short(v)}" for k, v in r["params"].items())
        print(f"  {r['data']} {r['rung'].split()[0]} ({r['scored']}) best values: {params}")
    by_val = [r for r in rows if r["scored"] == "val split"]
    by_folds = [r for r in rows if r["scored"] != "val split"]
    found = {
        "rows": rows,
        "better": sum(r["better"] for r in by_val),
        "significant": sum(r["better"] and r["p"] < 0.05 for r in by_val),
        "n": len(by_val),
    }
    if by_folds:
        found["folds"] = {
            "k": s.cv,
            "better": sum(r["better"] for r in by_folds),
            "significant": sum(r["better"] and r["p"] < 0.05 for r in by_folds),
            "n": len(by_folds),
        }
    return found


def _short(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else json.dumps(value)


# ----------------------------------------------------------------------------- 2. pruning


class EpochCount(Callback):
    """Counts the epochs each tuning trial trains (the trials' Trainers write their history
    into the study's scratch folder; the final trainings of `tune()` are not counted)."""

    def __init__(self) -> None:
        self.trials: list[int] = []
        self._trial = False

    def on_train_begin(self, trainer: Any) -> None:
        """Start a count when this Trainer trains a trial."""
        history = [cb for cb in trainer.callbacks if isinstance(cb, History) and cb.path]
        self._trial = bool(history) and WORK in history[0].path.parts
        if self._trial:
            self.trials.append(0)

    def on_epoch_end(self, trainer: Any, log: dict[str, float]) -> None:
        """One more epoch of the current trial."""
        if self._trial:
            self.trials[-1] += 1


def claim_pruning(out: Path, s: Settings) -> dict[str, Any]:
    """MLP on digits with median pruning and without, per epoch budget: epochs and best score."""
    print(f"\n2. pruning: {s.trials} trials of the MLP on digits, pruner median vs none")
    found: dict[str, Any] = {}
    rows = []
    for budget in s.budgets:
        studies = {}
        for pruner in ("median", "none"):
            config = example_config(
                "digits", "mlp", BUDGETS[budget], {"pruner": pruner}, epochs=s.epochs
            )
            counter = EpochCount()
            with added_callbacks(counter):
                study = run_study(out, f"prune-{budget.split()[0]}-{pruner}", config, s.trials)
            csv_epochs = pd.to_numeric(study.trials["epochs"], errors="coerce")
            studies[pruner] = study
            rows.append(
                {
                    "budget": budget,
                    "pruner": pruner,
                    "study": study,
                    "epochs": sum(counter.trials),
                    "fits": len(counter.trials),
                    "csv_epochs": int(csv_epochs.sum()) if csv_epochs.notna().any() else None,
                    "csv_filled": int(csv_epochs.notna().sum()),
                    "best": study.summary["best_value"],
                    "trial_seconds": float(study.trials["duration_s"].sum()),
                }
            )
        median, none = rows[-2], rows[-1]
        noise = _noise(studies["none"], s.seeds)
        diff = median["best"] - none["best"]
        found[budget] = {
            "saved": 1 - median["epochs"] / none["epochs"],
            "diff": diff,
            "within": abs(diff) <= 2 * max(noise["se"], noise["seed_sd"]),
            **noise,
        }
    epochs = s.epochs or 30
    print(
        f"{'budget':<15} {'pruner':<7} {'complete':>8} {'pruned':>6} {'epochs':>6} "
        f"{'trials.csv':>10} {'best val':>8} {'best trial':>10} {'trial s':>7} {'call s':>6}"
    )
    for r in rows:
        states = r["study"].summary["states"]
        csv = "empty" if r["csv_epochs"] is None else str(r["csv_epochs"])
        if r["csv_epochs"] is not None and r["csv_filled"] < r["fits"]:
            csv += f" ({r['csv_filled']} rows)"
        print(
            f"{r['budget']:<15} {r['pruner']:<7} {states.get('COMPLETE', 0):>8} "
            f"{states.get('PRUNED', 0):>6} {r['epochs']:>6} {csv:>10} {_fmt(r['best']):>8} "
            f"{r['study'].summary['best_trial']:>10} {r['trial_seconds']:>7.0f} "
            f"{r['study'].seconds:>6.0f}"
        )
    print(
        f"epochs: counted by a Trainer callback over the trials (at most {s.trials} x {epochs}); "
        "trials.csv: the sum of its epochs column (filled by the pruning callback only); "
        "trial s: the sum of duration_s. Both studies draw the same values for their first "
        "10 trials (TPE's random start-up, same seed), and the median pruner prunes none of "
        "the first 5: a best trial among those is the same trial in both studies"
    )
    for budget, f in found.items():
        pair = [r for r in rows if r["budget"] == budget]
        time_saved = 1 - pair[0]["trial_seconds"] / pair[1]["trial_seconds"]
        print(
            f"{budget}: median pruning trains {f['saved']:.0%} fewer epochs "
            f"({pair[0]['epochs']} / {pair[1]['epochs']}; trial time {time_saved:.0%} less); "
            f"best validation accuracy {_fmt(pair[0]['best'])} vs {_fmt(pair[1]['best'])} "
            f"(difference {f['diff']:+.4f}; noise: binomial SE {f['se']:.4f} on {f['n_val']} "
            f"validation rows, one row = {1 / f['n_val']:.4f}; the no-pruning study's best "
            f"configuration over {len(f['seed_values'])} seeds: "
            f"{', '.join(_fmt(v) for v in f['seed_values'])}, sd {f['seed_sd']:.4f}) -> "
            f"{'within noise' if f['within'] else 'beyond noise'} (|difference| <= 2 x the "
            "larger of the two)"
        )
    return found


def _noise(study: Study, seeds: int) -> dict[str, Any]:
    """The binomial standard error of the best validation accuracy, and the validation scores
    of the study's best configuration retrained with seeds 0..seeds-1."""
    config, data = prepared(study.path)
    raw = config.models[0]
    best = study.summary["best_value"]
    n_val = len(data.splits.val.y)
    entry = entry_with(config, raw, study.summary["best_params"])
    values = []
    with tempfile.TemporaryDirectory() as tmp, console.quieter():
        for seed in range(seeds):
            seeded = config.model_copy(update={"seed": seed})
            folder = Path(tmp) / str(seed)
            values.append(validation_score(seeded, entry, data, study.summary["metric"], folder))
    return {
        "n_val": n_val,
        "se": math.sqrt(best * (1 - best) / n_val),
        "seed_values": values,
        "seed_sd": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


# ----------------------------------------------------------------------------- 3. parallel


def trial_phase(study: Study) -> tuple[float, float]:
    """When the first trial started (time.time()) and the seconds from then to the last
    trial's end (the study's journal)."""
    storage = open_storage(f"journal:{study.run_dir / 'tune' / JOURNAL}")
    loaded = optuna.load_study(study_name=study.summary["study"], storage=storage)
    trials = loaded.get_trials(deepcopy=False)
    start = min(t.datetime_start for t in trials if t.datetime_start is not None)
    end = max(t.datetime_complete for t in trials if t.datetime_complete is not None)
    return start.timestamp(), (end - start).total_seconds()


def _forest_fits(x: np.ndarray, y: np.ndarray, seeds: list[int], barrier: Any, queue: Any) -> None:
    """Fit the even space's forest once per seed (after `barrier`); put the seconds taken."""
    from sklearn.ensemble import RandomForestClassifier

    if barrier is not None:
        barrier.wait()  # both processes start fitting together
    start = time.perf_counter()
    for seed in seeds:
        forest = RandomForestClassifier(
            n_estimators=200, max_features=0.5, min_samples_leaf=2, random_state=seed
        )
        forest.fit(x, y)
    queue.put(time.perf_counter() - start)


def machine_ceiling(config_path: Path, fits: int) -> float:
    """Fits per minute of two plain processes over one process, fitting the even space's
    forest on the same rows without ladder or Optuna: what this machine's cores allow."""
    config, data = prepared(config_path)
    x_train, y_train, _, _ = rung_arrays(config, data)
    x_train = as_rows(x_train)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    _forest_fits(x_train, y_train, list(range(fits)), None, queue)
    one = queue.get()
    barrier = context.Barrier(2)
    workers = [
        context.Process(
            target=_forest_fits, args=(x_train, y_train, list(range(k, fits, 2)), barrier, queue)
        )
        for k in range(2)
    ]
    for worker in workers:
        worker.start()
    two = max(queue.get() for _ in workers)
    for worker in workers:
        worker.join()
    return one / two


def claim_parallel(out: Path, s: Settings) -> dict[str, Any]:
    """random_forest on digits with --jobs 1 and --jobs 2: trials per minute, in rounds of
    alternating order (the even space) between two measurements of the machine's own
    parallelism."""
    print(
        f"\n3. parallel: {s.parallel_trials} trials of random_forest on digits, --jobs 1 vs 2 "
        f"({os.cpu_count()} cores)"
    )
    spaces = {"even": EVEN_FOREST, "default": None}
    config = example_config("digits", "forest")
    path = out / "configs" / "forest.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    ceilings = [machine_ceiling(path, s.ceiling_fits)]
    print(
        f"{'space':<8} {'round':>5} {'jobs':>4} {'trials':>6} {'start s':>7} {'phase s':>7} "
        f"{'trials/min':>10} {'call s':>6} {'trials/min (call)':>17} {'mean trial s':>12}"
    )
    found: dict[str, Any] = {}
    for space in s.forest_spaces:
        rounds = s.parallel_rounds if space == "even" else 1
        totals = {1: [0, 0.0, 0.0], 2: [0, 0.0, 0.0]}  # trials, phase s, call s
        ratios = []
        for r in range(rounds):
            rates = {}
            for jobs in (1, 2) if r % 2 == 0 else (2, 1):
                config = example_config("digits", "forest", tune_block=spaces[space])
                label = f"jobs-{space}-{r}-{jobs}"
                study = run_study(out, label, config, s.parallel_trials, jobs)
                n, (first, phase) = len(study.trials), trial_phase(study)
                rates[jobs] = 60 * n / phase
                for k, v in enumerate((n, phase, study.seconds)):
                    totals[jobs][k] += v
                print(
                    f"{space:<8} {r + 1:>5} {jobs:>4} {n:>6} {first - study.started:>7.1f} "
                    f"{phase:>7.1f} {rates[jobs]:>10.1f} {study.seconds:>6.1f} "
                    f"{60 * n / study.seconds:>17.1f} {study.trials['duration_s'].mean():>12.2f}"
                )
            ratios.append(rates[2] / rates[1])
        phase_rate = {j: 60 * t[0] / t[1] for j, t in totals.items()}
        call_rate = {j: 60 * t[0] / t[2] for j, t in totals.items()}
        found[space] = {
            "phase": phase_rate[2] / phase_rate[1],
            "call": call_rate[2] / call_rate[1],
            "rounds": ratios,
        }
    ceilings.append(machine_ceiling(path, s.ceiling_fits))
    for space, f in found.items():
        f["ceilings"] = ceilings
        rounds = f" (rounds: {', '.join(f'{x:.2f}x' for x in f['rounds'])})"
        print(
            f"{space} space: --jobs 2 / --jobs 1 = {f['phase']:.2f}x trials/min in the trial "
            f"phase{rounds if len(f['rounds']) > 1 else ''}, {f['call']:.2f}x over the whole "
            f"tune() call (goal >= {GOAL_JOBS}x)"
        )
    print(
        f"this machine: two plain processes fit {ceilings[0]:.2f}x (before) and "
        f"{ceilings[1]:.2f}x (after) the forests per minute of one ({s.ceiling_fits} fits of "
        "the even space's forest each, no ladder, no Optuna)"
    )
    print(
        "start s: from the tune() call to its first trial; phase: first trial's start to last "
        "trial's end, which with --jobs 2 includes the few seconds the second process takes "
        "to start (a new Python process importing ladder) while the first one runs trials "
        "(the journal's timestamps); call: the whole tune() call, which also trains the "
        "untuned and the tuned model once, one process. even: 200 trees on half the features, "
        "only min_samples_leaf 1-3 searched (each trial the same work); default: 50-400 trees "
        "on 1/8 to all features (the two studies draw different work: see mean trial s)"
    )
    return found


# ----------------------------------------------------------------------------- 4. by hand


def rung_arrays(config: Config, data: PreparedData) -> tuple[np.ndarray, ...]:
    """Training and validation features and targets as the rung sees them: the entry's
    preprocessing fitted on the training split (as `fit_rung` does)."""
    entry = config.model(config.models[0]["name"])
    splits = data.splits
    preprocessor = fit_preprocessor(splits.train, getattr(entry.params, "image_size", None))
    return (
        preprocessor.transform(splits.train.X),
        np.asarray(splits.train.y),
        preprocessor.transform(splits.val.X),
        np.asarray(splits.val.y),
    )


def timed(objective: Any, times: list[float]) -> Any:
    """`objective`, its wall time per call appended to `times`."""

    def call(trial: optuna.Trial) -> float:
        start = time.perf_counter()
        try:
            return objective(trial)
        finally:
            times.append(time.perf_counter() - start)

    return call


def hand_gbdt(arrays: tuple[np.ndarray, ...], trials: int) -> tuple[optuna.Study, list[float]]:
    """The study a user writes by hand: TPE with seed 0, HistGradientBoostingClassifier."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import accuracy_score

    x_train, y_train, x_val, y_val = arrays
    x_train, x_val = as_rows(x_train), as_rows(x_val)

    def objective(trial: optuna.Trial) -> float:
        params = {
            "learning_rate": trial.suggest_float("learning_rate", 1e-2, 0.3, log=True),
            "max_iter": trial.suggest_int("max_iter", 50, 300, log=True),
            "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
            "min_samples_leaf": trial.suggest_int("min_samples_leaf", 5, 50, log=True),
            "l2_regularization": trial.suggest_float("l2_regularization", 1e-6, 1.0, log=True),
        }
        model = HistGradientBoostingClassifier(**params, random_state=SEED)
        model.fit(x_train, y_train)
        return accuracy_score(y_val, model.predict(x_val))

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    times: list[float] = []
    study.optimize(timed(objective, times), n_trials=trials)
    return study, times


def hand_mlp(
    arrays: tuple[np.ndarray, ...], n_classes: int, epochs: int, trials: int
) -> tuple[optuna.Study, list[float]]:
    """The study a user writes by hand: TPE with seed 0, ladder's MLP module in a plain
    PyTorch loop (seeded as ladder's Trainer seeds: initialisation, dropout, batch order)."""
    x_train, y_train, x_val, y_val = (torch.from_numpy(np.asarray(a)) for a in arrays)
    y_train, y_val = y_train.long(), y_val.long()
    spec = get_spec("mlp")
    labels = [json.dumps(h) for h in HIDDEN]

    def objective(trial: optuna.Trial) -> float:
        lr = trial.suggest_float("optimizer.lr", 1e-4, 1e-2, log=True)
        decay = trial.suggest_float("optimizer.weight_decay", 1e-6, 1e-2, log=True)
        hidden = json.loads(trial.suggest_categorical("hidden", labels))
        dropout = trial.suggest_float("dropout", 0.0, 0.5)
        batch_size = trial.suggest_categorical("batch_size", [32, 64, 128])
        torch.manual_seed(SEED)
        config = spec.config_cls(hidden=hidden, dropout=dropout)
        module = spec.build(config, tuple(x_train.shape[1:]), n_classes)
        optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=decay)
        torch.manual_seed(SEED)  # dropout
        for epoch in range(1, epochs + 1):
            module.train()
            generator = torch.Generator().manual_seed(SEED * 1_000_003 + epoch)
            batches = list(torch.randperm(len(x_train), generator=generator).split(batch_size))
            if len(batches) > 1 and len(batches[-1]) < 2:  # batchnorm needs 2 rows
                batches.pop()
            for rows in batches:
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(module(x_train[rows]), y_train[rows]).backward()
                optimizer.step()
            module.eval()
            with torch.no_grad():  # what the user watches each epoch
                logits = module(x_val)
                F.cross_entropy(logits, y_val).item()
                accuracy = int((logits.argmax(1) == y_val).sum()) / len(y_val)
        return accuracy

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED))
    times: list[float] = []
    study.optimize(timed(objective, times), n_trials=trials)
    return study, times


def compare(study: Study, hand: optuna.Study, times: list[float]) -> dict[str, Any]:
    """Ladder's study against the hand-written one: same proposals, values and times."""
    ours = study.trials.sort_values("number").reset_index(drop=True)
    same_params = same_values = 0
    columns = [c for c in ours if c.startswith("param.")]
    for (_, row), trial in zip(ours.iterrows(), hand.trials, strict=True):
        mine = {c.removeprefix("param."): row[c] for c in columns}
        same_params += all(_same(mine[name], value) for name, value in trial.params.items())
        same_values += trial.value is not None and _same(row["value"], trial.value)
    ladder_times = ours["duration_s"].to_numpy(dtype=float)
    hand_times = np.asarray(times)
    paired = ladder_times / np.maximum(hand_times, 1e-9)
    return {
        "n": len(ours),
        "same_params": same_params,
        "same_values": same_values,
        "ladder_best": study.summary["best_value"],
        "hand_best": hand.best_value,
        "ladder_mean": float(ladder_times.mean()),
        "hand_mean": float(hand_times.mean()),
        "overhead": float(ladder_times.mean() / hand_times.mean() - 1),
        "paired": float(np.median(paired) - 1),
        "trimmed": float(ladder_times[1:].mean() / hand_times[1:].mean() - 1)
        if len(ours) > 1
        else math.nan,
    }


def _same(a: Any, b: Any) -> bool:
    """Equal values (floats to 1e-12, JSON labels as their lists)."""
    if isinstance(a, str) and isinstance(b, str):
        try:
            return json.loads(a) == json.loads(b)
        except json.JSONDecodeError:
            return a == b
    try:
        return math.isclose(float(a), float(b), rel_tol=1e-12, abs_tol=0.0)
    except (TypeError, ValueError):
        return a == b


def claim_by_hand(out: Path, s: Settings) -> dict[str, Any]:
    """GBDT (and MLP) on digits: ladder's study against a hand-written Optuna loop."""
    print(f"\n4. against Optuna by hand: {s.trials} trials on digits, TPE seed {SEED}")
    if {k: dict(v) for k, v in GBDT_SPACE.items()} != default_space("gradient_boosting"):
        print("  warning: ladder's gradient_boosting default space differs from the hand loop's")
    found = {}
    study = run_study(out, "hand-gbdt", example_config("digits", "boosting"), s.trials)
    config, data = prepared(study.path)
    arrays = rung_arrays(config, data)
    print("  hand-written gbdt loop", file=sys.stderr, flush=True)
    hand, times = hand_gbdt(arrays, s.trials)
    found["gbdt"] = compare(study, hand, times)

    config_mlp = example_config(
        "digits", "mlp", {**PLAIN_TRAIN, "epochs": s.plain_epochs}, {"pruner": "none"}
    )
    study = run_study(out, "hand-mlp", config_mlp, s.trials)
    config, data = prepared(study.path)
    arrays = rung_arrays(config, data)
    print("  hand-written mlp loop", file=sys.stderr, flush=True)
    hand, times = hand_mlp(arrays, len(data.labels), s.plain_epochs, s.trials)
    found["mlp"] = compare(study, hand, times)

    print(
        f"{'rung':<5} {'trials':>6} {'same params':>11} {'same value':>10} {'ladder best':>11} "
        f"{'hand best':>9} {'ladder s/trial':>14} {'hand s/trial':>12} {'overhead':>8} "
        f"{'paired median':>13} {'w/o trial 0':>11}"
    )
    for rung, f in found.items():
        print(
            f"{rung:<5} {f['n']:>6} {f['same_params']:>11} {f['same_values']:>10} "
            f"{_fmt(f['ladder_best']):>11} {_fmt(f['hand_best']):>9} {f['ladder_mean']:>14.3f} "
            f"{f['hand_mean']:>12.3f} {f['overhead']:>+8.1%} {f['paired']:>+13.1%} "
            f"{f['trimmed']:>+11.1%}"
        )
    print(
        "overhead: mean ladder duration_s / mean hand time per objective call - 1; paired "
        "median: the median over trials of ladder / hand - 1 (like for like where the params "
        f"are the same); mlp: {s.plain_epochs} epochs, AdamW, no schedule, no early stopping, "
        "no pruning, validation each epoch on both sides (the hand loop: loss and accuracy; "
        "ladder: loss and every evaluate.metrics of the config, here accuracy, f1_macro and "
        "roc_auc)"
    )
    return found


# ----------------------------------------------------------------------------- main


def summary(found: dict[str, Any]) -> None:
    """Each claim's measured number against its goal."""
    print(f"\n{'summary':<62} {'measured':>22} {'goal':>10} {'verdict':>7}")

    def line(what: str, measured: str, goal: str, ok: bool | None) -> None:
        verdict = "-" if ok is None else "PASS" if ok else "FAIL"
        print(f"{what:<62} {measured:>22} {goal:>10} {verdict:>7}")

    if "1" in found:
        f = found["1"]
        line(
            "1. tuned beats untuned on the test split (4 rungs)",
            f"{f['better']}/{f['n']} ({f['significant']} p<0.05)",
            f"{f['n']}/{f['n']}",
            f["better"] == f["n"],
        )
        if "folds" in f:
            k = f["folds"]
            line(
                f"1. the same, trials scored on {k['k']} folds of train + val",
                f"{k['better']}/{k['n']} ({k['significant']} p<0.05)",
                f"{k['n']}/{k['n']}",
                k["better"] == k["n"],
            )
    for budget, f in found.get("2", {}).items():
        line(
            f"2. median pruning: fewer epochs ({budget})",
            f"{f['saved']:.0%} (val {f['diff']:+.4f})",
            f">= {GOAL_PRUNED:.0%}",
            f["saved"] >= GOAL_PRUNED,
        )
    for space, f in found.get("3", {}).items():
        line(
            f"3. --jobs 2 / --jobs 1 trials/min, random_forest ({space} space)",
            f"{f['phase']:.2f}x (machine {min(f['ceilings']):.2f}-{max(f['ceilings']):.2f}x)",
            f">= {GOAL_JOBS}x",
            f["phase"] >= GOAL_JOBS if space == "even" else None,
        )
    for rung, f in found.get("4", {}).items():
        line(
            f"4. ladder / hand Optuna time per trial - 1 ({rung})",
            f"{f['overhead']:+.1%} (paired {f['paired']:+.1%})",
            f"<= {GOAL_OVERHEAD:.0%}",
            f["overhead"] <= GOAL_OVERHEAD if rung == "gbdt" else None,
        )
        line(
            f"   best validation accuracy ladder vs hand ({rung})",
            f"{_fmt(f['ladder_best'])} vs {_fmt(f['hand_best'])}",
            "equal",
            f["ladder_best"] == f["hand_best"] if rung == "gbdt" else None,
        )
    print("verdicts: claim 3 on the even space, claim 4 on GBDT; the other lines are for reference")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="trials of claims 1, 2 and 4")
    parser.add_argument(
        "--parallel-trials", type=int, default=60, help="trials of each claim-3 study"
    )
    parser.add_argument(
        "--seeds", type=int, default=5, help="claim 2: seeds of the best configuration's refits"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="claim 3: rounds of --jobs 1 and 2, order alternating"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's own)")
    parser.add_argument(
        "--cv",
        type=int,
        default=5,
        help="claim 1 also with trials scored on K folds of train + val (0: only the val split)",
    )
    parser.add_argument(
        "--claims", nargs="+", default=["1", "2", "3", "4"], choices=["1", "2", "3", "4"]
    )
    parser.add_argument("--out", type=Path, help="run folders here (default: a temp folder)")
    parser.add_argument(
        "--quick", action="store_true", help="a few trials of everything (a smoke test, < 2 min)"
    )
    parser.add_argument("--verbose", action="store_true", help="ladder's status lines too")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    if not args.verbose:
        console.set_verbosity(console.QUIET)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = settings(args)
    print(
        f"ladder tune benchmark: {os.cpu_count()} cores, torch threads "
        f"{torch.get_num_threads()}, optuna {optuna.__version__}"
        + (" (--quick: not for the claims)" if args.quick else "")
    )
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="ladder-tune-bench-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        claims = {
            "1": claim_tuned,
            "2": claim_pruning,
            "3": claim_parallel,
            "4": claim_by_hand,
        }
        found = {k: claims[k](out, s) for k in sorted(set(args.claims))}
    summary(found)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()

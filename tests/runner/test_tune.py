"""`ladder tune`: trials on the validation split, the best tested once as `NAME (tuned)`,
resuming, failures, bad input, parallel processes and every task."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from helpers import write_config

from ladder.cli import main
from ladder.config import validate_config
from ladder.runner import tune_objective
from ladder.runner.tune import TuneRequest, tune
from ladder.tuning.storage import open_storage, storage_url

LOGREG = {
    "name": "logreg",
    "type": "logistic_regression",
    "tune": {"C": {"low": 1.0e-3, "high": 10.0, "log": True}},
}


def run(capsys, *args):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def trials_of(run_dir: Path, model: str) -> pd.DataFrame:
    return pd.read_csv(run_dir / "tune" / model / "trials.csv")


def test_tune_searches_on_validation_and_tests_the_best_once_beside_the_untuned_model(
    tmp_path, table_csv, capsys, monkeypatch
):
    seen_tests = []
    real_fit = tune_objective.fit_rung

    def spy(config, entry, data, work_dir, **kw):
        seen_tests.append(data.splits.test is data.splits.val)
        return real_fit(config, entry, data, work_dir, **kw)

    monkeypatch.setattr(tune_objective, "fit_rung", spy)
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    code, out, err = run(
        capsys, "tune", config, "--model", "logreg", "--trials", 4, "--out", tmp_path / "run"
    )
    assert code == 0, err
    assert seen_tests == [True] * 4  # every trial scored the validation split as its "test"

    run_dir = tmp_path / "run"
    trials = trials_of(run_dir, "logreg")
    assert list(trials["number"]) == [0, 1, 2, 3]
    assert set(trials["state"]) == {"COMPLETE"}
    assert trials["param.C"].between(1e-3, 10).all()
    assert "best accuracy on the validation split" in out and "C:" in out

    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert {"logreg", "logreg (tuned)"} <= set(board["model"])
    tuned = board.set_index("model").loc["logreg (tuned)"]
    assert tuned["variant_of"] == "logreg" and tuned["type"] == "logistic_regression"
    assert np.isfinite(tuned["accuracy_ci_low"]) and np.isfinite(tuned["accuracy_ci_high"])

    study = json.loads((run_dir / "tune/logreg/study.json").read_text())
    assert study["direction"] == "maximize" and study["metric"] == "accuracy"
    assert study["best_value"] == trials["value"].max()
    assert study["best_params"]["C"] == pytest.approx(
        trials.loc[trials["value"].idxmax(), "param.C"]
    )
    assert study["test"]["accuracy"] == pytest.approx(tuned["accuracy"])
    assert "accuracy" in study["untuned_test"]
    metrics = json.loads((run_dir / "models/logreg (tuned)/metrics.json").read_text())
    assert metrics["tuned"]["params"] == study["best_params"]
    for plot in ("optimization_history.png", "param_importance.png"):
        assert (run_dir / "tune/logreg" / plot).read_bytes().startswith(b"\x89PNG")
    assert not (run_dir / "tune/logreg/work").exists()

    # the snippet pastes into a config as it is
    snippet = yaml.safe_load((run_dir / "tune/logreg/best.yaml").read_text())
    entry = snippet["models"][0]
    assert entry["C"] == pytest.approx(study["best_params"]["C"]) and "tune" not in entry
    validate_config({"name": "x", "data": {"source": "a.csv"}, "models": snippet["models"]})

    report = (run_dir / "report.html").read_text()
    assert 'id="tuning"' in report and "logreg (tuned)" in report


def test_an_interrupted_study_resumes_and_its_stale_trial_is_failed(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    out_dir = tmp_path / "run"
    code, _, err = run(capsys, "tune", config, "--model", "logreg", "--trials", 2, "--out", out_dir)
    assert code == 0, err
    # a process killed mid-trial leaves it RUNNING in the journal
    storage = open_storage(storage_url(None, out_dir / "tune"))
    optuna.load_study(study_name="toy-logreg", storage=storage).ask()

    code, _, err = run(capsys, "tune", config, "--model", "logreg", "--trials", 5, "--out", out_dir)
    assert code == 0, err
    assert "3 of 5 trials done" in err
    assert "1 trial(s) of an interrupted run marked failed" in err
    trials = trials_of(out_dir, "logreg")
    assert list(trials["number"]) == [0, 1, 2, 3, 4]
    assert list(trials["state"]) == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials.loc[2, "error"].startswith("interrupted")


def test_failing_trials_are_recorded_and_the_study_goes_on(tmp_path, table_csv, capsys):
    model = {
        "name": "tree",
        "type": "decision_tree",
        # max_depth 0 is refused by scikit-learn: those trials fail, the others count
        "tune": {"max_depth": {"choices": [0, 3]}, "min_samples_leaf": {"low": 1, "high": 5}},
    }
    config = write_config(tmp_path, str(table_csv), [model])
    code, _, err = run(
        capsys, "tune", config, "--model", "tree", "--trials", 8, "--out", tmp_path / "r"
    )
    assert code == 0, err
    trials = trials_of(tmp_path / "r", "tree")
    failed = trials[trials["state"] == "FAIL"]
    assert len(failed) >= 1 and (failed["param.max_depth"] == 0).all()
    assert failed["error"].str.contains("max_depth").all()
    assert (trials[trials["state"] == "COMPLETE"]["param.max_depth"] == 3).all()


def test_a_study_where_every_trial_fails_is_one_line_and_exit_2(tmp_path, table_csv, capsys):
    model = {"name": "tree", "type": "decision_tree", "tune": {"max_depth": {"choices": [0, -1]}}}
    config = write_config(tmp_path, str(table_csv), [model])
    code, _, err = run(
        capsys, "tune", config, "--model", "tree", "--trials", 2, "--out", tmp_path / "r"
    )
    assert code == 2
    line = err.strip().splitlines()[-1]
    assert line.startswith("error: study toy-tree: no trial completed (2 trials; the first error:")
    assert "Traceback" not in err


def test_regression_minimizes_rmse_and_evaluate_cv_scores_folds(tmp_path, capsys):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    frame["price"] = 3 * x[:, 0] - x[:, 1] + rng.normal(0, 0.3, 120)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    model = {"name": "ridge", "type": "ridge"}  # its default space: alpha on a log scale
    config = write_config(
        tmp_path, str(tmp_path / "prices.csv"), [model], evaluate={"cv": 3, "bootstrap": 100}
    )
    raw = yaml.safe_load(config.read_text())
    raw["data"]["target"] = "price"
    config.write_text(yaml.safe_dump(raw))
    code, _, err = run(
        capsys, "tune", config, "--model", "ridge", "--trials", 3, "--out", tmp_path / "r"
    )
    assert code == 0, err
    study = json.loads((tmp_path / "r/tune/ridge/study.json").read_text())
    assert study["direction"] == "minimize" and study["metric"] == "rmse"
    assert set(study["space"]) == {"alpha"}
    assert "rmse" in study["test"]


def test_cv_folds_hold_out_train_and_val_rows_only():
    from ladder.data.dataset import Dataset, Splits
    from ladder.runner.prepare import PreparedData

    def part(rows):
        return Dataset("tabular", pd.DataFrame({"a": rows}), np.array(rows) % 2, [0, 1])

    data = PreparedData(
        Splits(part(list(range(20))), part(list(range(20, 30))), part([99])), [0, 1], "s", {}
    )
    folds = tune_objective.cv_folds(data, 3, 0)
    held = sorted(v for fold in folds for v in fold.splits.test.X["a"])
    assert held == list(range(30))  # every train and val row held out once, test never
    for fold in folds:
        assert fold.splits.val is fold.splits.test
        assert not set(fold.splits.train.X["a"]) & set(fold.splits.test.X["a"])


@pytest.mark.parametrize(
    ("change", "args", "message"),
    [
        (
            {"data": {"split": {"val": 0, "test": 0.2}}},
            [],
            "data.split.val: tuning scores trials on the validation split",
        ),
        (
            {},
            ["--storage", "postgresql://me:pw@127.0.0.1:1/db"],
            "cannot reach the postgresql server at 127.0.0.1:1",
        ),
        ({}, ["--jobs", "0"], "--jobs: expected at least 1, got 0"),
        ({}, ["--model", "logre"], "no model named 'logre'; did you mean 'logreg'?"),
        ({"tune": {"metric": "rmse"}}, [], "tune.metric: unknown metric 'rmse'"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, table_csv, capsys, change, args, message
):
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    raw = yaml.safe_load(config.read_text())
    for key, value in change.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(raw.get(key), dict) else value
    config.write_text(yaml.safe_dump(raw))
    model = [] if "--model" in args else ["--model", "logreg"]
    code, _, err = run(capsys, "tune", config, *model, *args, "--out", tmp_path / "run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], err
    assert not (tmp_path / "run").exists()


def test_a_study_name_with_another_space_is_refused(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    out = tmp_path / "run"
    assert run(capsys, "tune", config, "--model", "logreg", "--trials", 1, "--out", out)[0] == 0
    raw = yaml.safe_load(config.read_text())
    raw["models"][0]["tune"]["C"]["high"] = 100.0
    config.write_text(yaml.safe_dump(raw))
    code, _, err = run(capsys, "tune", config, "--model", "logreg", "--trials", 2, "--out", out)
    assert code == 2
    assert "--study toy-logreg: this study exists with another search space" in err
    code, _, err = run(
        capsys, "tune", config, "--model", "logreg", "--trials", 1, "--study", "wider", "--out", out
    )
    assert code == 0, err


def test_a_neural_study_prunes_from_epoch_scores_and_counts_epochs(tmp_path, table_csv):
    mlp = {
        "name": "mlp",
        "type": "mlp",
        "hidden": [16],
        "epochs": 6,
        "tune": {
            "lr": {"low": 1.0e-5, "high": 3.0e-2, "log": True},
            "pruner": "median",
            "trials": 9,
        },
    }
    config = write_config(tmp_path, str(table_csv), [mlp])
    result = tune(config, TuneRequest("mlp"), out=tmp_path / "run")
    trials = trials_of(tmp_path / "run", "mlp")
    assert len(trials) == 9
    assert (trials["epochs"] <= 6).all() and (trials["epochs"] >= 1).all()
    pruned = trials[trials["state"] == "PRUNED"]
    assert (pruned["epochs"] < 6).all()
    assert (trials[trials["state"] == "COMPLETE"]["epochs"] == 6).all()
    assert result.tuned_model == "mlp (tuned)" and result.test is not None


@pytest.mark.slow
def test_two_jobs_share_one_study_without_losing_or_repeating_trials(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    code, _, err = run(
        capsys,
        "tune",
        config,
        "--model",
        "logreg",
        "--trials",
        8,
        "--jobs",
        2,
        "--out",
        tmp_path / "r",
    )
    assert code == 0, err
    trials = trials_of(tmp_path / "r", "logreg")
    assert 8 <= len(trials) <= 9  # two processes may each start a trial at the last one
    assert list(trials["number"]) == list(range(len(trials)))
    assert set(trials["state"]) == {"COMPLETE"}
    assert trials["param.C"].nunique() == len(trials)  # each process samples its own values


@pytest.mark.slow
def test_two_machines_share_a_study_through_postgresql(tmp_path, table_csv, postgres_url):
    # trials long enough (a few hundred ms) that both processes are at work before the end
    forest = {
        "name": "forest",
        "type": "random_forest",
        "tune": {"n_estimators": {"low": 100, "high": 200}},
    }
    config = write_config(tmp_path, str(table_csv), [forest])
    commands = [
        [
            sys.executable,
            "-m",
            "ladder.cli",
            "tune",
            str(config),
            "--model",
            "forest",
            "--trials",
            "16",
            "--storage",
            postgres_url,
            "--study",
            "shared",
            "--out",
            str(tmp_path / f"machine{k}"),
        ]
        for k in (1, 2)
    ]
    processes = [
        subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for c in commands
    ]
    results = [p.communicate(timeout=300) for p in processes]
    for process, (_, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        trials = optuna.load_study(study_name="shared", storage=storage).get_trials()
    finally:
        storage.remove_session()
        storage.engine.dispose()
    numbers = [t.number for t in trials]
    assert 16 <= len(trials) <= 17
    assert sorted(numbers) == list(range(len(trials)))  # none lost, none twice
    assert {t.state.name for t in trials} == {"COMPLETE"}
    ran = [err.count("trial ") for _, err in results]
    assert all(n > 0 for n in ran)  # both processes ran trials
    for k in (1, 2):
        board = pd.read_csv(tmp_path / f"machine{k}" / "leaderboard.csv")
        assert "forest (tuned)" in set(board["model"])


def test_generation_and_seq2seq_rungs_tune_too(tmp_path):
    from test_lm_rung import corpus_text, write_lm_config
    from test_s2s_rung import write_s2s_config

    lm = write_lm_config(
        tmp_path, [{"name": "ngram", "type": "ngram", "order": 2}], text=corpus_text()
    )
    result = tune(lm, TuneRequest("ngram", trials=3), out=tmp_path / "lm")
    assert result.metric == "bits_per_byte" and result.tuned_model == "ngram (tuned)"
    assert (
        json.loads((tmp_path / "lm/tune/ngram/study.json").read_text())["direction"] == "minimize"
    )

    s2s_dir = tmp_path / "s2s"
    s2s_dir.mkdir()
    s2s = write_s2s_config(
        s2s_dir, [{"name": "memory", "type": "memory"}], source="builtin:numbers-en-fr:200"
    )
    result = tune(s2s, TuneRequest("memory", trials=3), out=tmp_path / "s2s_run")
    assert result.metric == "bleu" and result.test is not None and "bleu" in result.test
    board = pd.read_csv(tmp_path / "s2s_run" / "leaderboard.csv")
    assert "memory (tuned)" in set(board["model"])


def test_a_later_run_keeps_the_tuned_row_and_retraining_the_original_keeps_it(
    tmp_path, table_csv, capsys
):
    config = write_config(tmp_path, str(table_csv), [LOGREG])
    out = tmp_path / "run"
    assert run(capsys, "tune", config, "--model", "logreg", "--trials", 2, "--out", out)[0] == 0
    code, _, err = run(capsys, "run", config, "--out", out, "--force")
    assert code == 0, err
    board = pd.read_csv(out / "leaderboard.csv")
    assert {"logreg", "logreg (tuned)"} <= set(board["model"])


def test_the_pruning_callback_reports_epochs_and_prunes_when_told():
    from ladder.tuning.pruning import TrialPruning, epoch_score

    class FakeTrial:
        def __init__(self, prune_at):
            self.reported, self.attrs, self.prune_at = [], {}, prune_at

        def set_user_attr(self, key, value):
            self.attrs[key] = value

        def report(self, value, step):
            self.reported.append((step, value))

        def should_prune(self):
            return len(self.reported) >= self.prune_at

    trial = FakeTrial(prune_at=2)
    callback = TrialPruning(trial, "accuracy", maximize=True)
    callback.on_epoch_end(None, {"val_accuracy": 0.5, "val_loss": 1.0})
    with pytest.raises(optuna.TrialPruned, match="pruned after epoch 2"):
        callback.on_epoch_end(None, {"val_accuracy": 0.6, "val_loss": 0.9})
    assert trial.reported == [(1, 0.5), (2, 0.6)] and trial.attrs == {"epochs": 2}
    # without the metric in the epoch's log, the loss stands in, in the study's direction
    assert epoch_score({"val_loss": 0.7}, "accuracy", maximize=True) == -0.7
    assert epoch_score({"val_loss": 0.7}, "rmse", maximize=False) == 0.7
    assert epoch_score({"train_loss": 0.7}, "rmse", maximize=False) is None


def test_list_tune_prints_every_type_with_its_default_space(capsys):
    from ladder.registry import MODEL_TYPES

    code, out, _ = run(capsys, "list", "--tune")
    assert code == 0
    assert "learning_rate" in out and "optimizer.lr" in out  # lr is shown by its full name
    for model_type in MODEL_TYPES:
        if model_type != "mean":
            assert model_type in out
    code, _, err = run(capsys, "list", "datasets", "--tune")
    assert code == 2 and "--tune lists the models' default search spaces" in err


def test_epochs_are_counted_without_pruning_too(tmp_path, table_csv):
    mlp = {"name": "mlp", "type": "mlp", "hidden": [8], "epochs": 2, "tune": {"pruner": "none"}}
    config = write_config(tmp_path, str(table_csv), [mlp])
    tune(config, TuneRequest("mlp", trials=2), out=tmp_path / "run")
    trials = trials_of(tmp_path / "run", "mlp")
    assert list(trials["epochs"]) == [2, 2] and set(trials["state"]) == {"COMPLETE"}

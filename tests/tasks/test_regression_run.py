"""Regression through the whole ladder: auto detection, training, the leaderboard, intervals,
the artifact's predictions in the target's units, and the bad inputs of a numeric target."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.datasets import load_diabetes

import ladder
from ladder.errors import ConfigError, DataError
from ladder.runner.ladder import run

MLP = {"name": "mlp", "type": "mlp", "hidden": [32], "epochs": 30, "optimizer": {"lr": 0.01}}


def _diabetes(tmp_path: Path) -> Path:
    path = tmp_path / "diabetes.csv"
    load_diabetes(as_frame=True).frame.to_csv(path, index=False)
    return path


def _config(tmp_path: Path, source: Path, models: list[dict], **sections) -> Path:
    config = {
        "name": "reg",
        "seed": 0,
        "data": {"source": str(source), "target": "target", **sections.pop("data", {})},
        "models": models,
        "train": {"batch_size": 32, "early_stopping": None},
        **sections,
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_auto_finds_regression_and_the_ladder_ranks_by_rmse(tmp_path, capsys):
    source = _diabetes(tmp_path)
    config = _config(tmp_path, source, [MLP], evaluate={"intervals": 0.9})
    result = run(config, out=tmp_path / "run")

    said = capsys.readouterr()
    assert "target 'target' is numeric with 214 distinct values: regression" in said.out + said.err
    board = result.leaderboard
    assert list(board.columns[:6]) == [
        "model",
        "type",
        "variant_of",
        "rmse",
        "rmse_ci_low",
        "rmse_ci_high",
    ]
    row = board.iloc[0]
    assert row["status"] == "ok"
    assert row["rmse_ci_low"] <= row["rmse"] <= row["rmse_ci_high"]
    assert row["r2"] > 0.3  # the diabetes target is learnable; the mean predicts r2 = 0
    assert 0.75 <= row["coverage"] <= 1.0
    assert row["ttest_p"] == 1.0  # the best model against itself
    folder = tmp_path / "run" / "models" / "mlp"
    assert {p.name for p in (folder / "plots").iterdir()} >= {
        "predicted_vs_actual.png",
        "residuals.png",
        "learning_curve.png",
    }
    report = (tmp_path / "run" / "report.html").read_text()
    assert (
        "<h3>Predicted vs actual</h3><figure><img" in report and "<h3>Target</h3><table>" in report
    )
    assert "Confusion matrix" not in report
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["data"]["task"] == "regression"
    assert saved["evaluate"]["primary"] == "rmse"


def test_the_artifact_predicts_in_the_targets_units_with_intervals(tmp_path):
    source = _diabetes(tmp_path)
    config = _config(tmp_path, source, [MLP], evaluate={"intervals": 0.9})
    run(config, out=tmp_path / "run")
    folder = tmp_path / "run" / "models" / "mlp"
    manifest = json.loads((folder / "artifact" / "manifest.json").read_text())
    assert manifest["task"] == "regression" and manifest["labels"] == []
    assert manifest["target_scaling"]["std"] > 10  # standardised on the training split
    tested = pd.read_csv(folder / "test_predictions.csv")

    model = ladder.load(folder / "artifact", backend="torch")
    frame = pd.read_csv(source).drop(columns=["target"])
    values = model.predict(frame)
    assert values.dtype == np.float64 and values.shape == (len(frame),)
    assert 25 < values.mean() < 300  # the target's units, not standardised ones
    value, lower, upper = model.predict_interval(frame.iloc[:5])
    np.testing.assert_allclose(upper - lower, 2 * manifest["interval"]["radius"])
    np.testing.assert_allclose(value, values[:5])
    assert set(tested.columns) == {"y_true", "y_pred", "lower", "upper"}


def test_log1p_target_transform_round_trips(tmp_path):
    source = _diabetes(tmp_path)
    config = _config(tmp_path, source, [MLP], data={"target_transform": "log1p"})
    result = run(config, out=tmp_path / "run")
    assert result.leaderboard.iloc[0]["r2"] > 0.2
    artifact = tmp_path / "run" / "models" / "mlp" / "artifact"
    manifest = json.loads((artifact / "manifest.json").read_text())
    assert manifest["target_scaling"]["log1p"] is True
    values = ladder.load(artifact, backend="torch").predict(pd.read_csv(source).iloc[:20])
    assert values.min() > 0 and 25 < values.mean() < 350


@pytest.mark.parametrize("loss", ["mae", "huber"])
def test_other_losses_train(tmp_path, loss):
    source = _diabetes(tmp_path)
    entry = {**MLP, "epochs": 10, "loss": loss}
    result = run(_config(tmp_path, source, [entry]), out=tmp_path / "run")
    assert result.leaderboard.iloc[0]["status"] == "ok"
    assert result.leaderboard.iloc[0]["r2"] > 0


def test_few_integer_values_stay_classification(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    frame = pd.DataFrame({"x": x, "target": (x > 0).astype(int) + 1})
    frame.to_csv(tmp_path / "t.csv", index=False)
    entry = {"name": "logreg", "type": "logistic_regression"}
    result = run(_config(tmp_path, tmp_path / "t.csv", [entry]), out=tmp_path / "run")
    assert "accuracy" in result.leaderboard.columns


# ----------------------------------------------------------------------------- bad input


def _table(tmp_path: Path, target: list) -> Path:
    n = len(target)
    frame = pd.DataFrame({"x": np.linspace(0, 1, n), "target": target})
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    return path


def test_a_text_value_in_a_regression_target_is_named_with_its_row(tmp_path):
    source = _table(tmp_path, [1.5, 2.5, "n/a?", 4.0] * 10)
    config = _config(tmp_path, source, [MLP], data={"task": "regression"})
    with pytest.raises(DataError, match=r"holds 'n/a\?' at data row 3, not a number"):
        run(config, out=tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_missing_targets_are_an_error_or_dropped_with_a_count(tmp_path):
    values = [float(i) + 0.5 for i in range(60)]
    values[7] = np.nan
    source = _table(tmp_path, values)
    config = _config(tmp_path, source, [MLP], data={"task": "regression"})
    with pytest.raises(DataError, match="1 rows have no value in target column 'target'"):
        run(config, out=tmp_path / "run")
    config = _config(tmp_path, source, [{**MLP, "epochs": 1}], data={"drop_missing_target": True})
    result = run(config, out=tmp_path / "run")
    info = json.loads((tmp_path / "run" / "data.json").read_text())
    assert info["rows"]["total"] == 59 and result.leaderboard.iloc[0]["status"] == "ok"


def test_infinite_and_constant_targets_are_refused(tmp_path):
    values = [float(i) + 0.5 for i in range(60)]
    values[4] = np.inf
    config = _config(tmp_path, _table(tmp_path, values), [MLP], data={"task": "regression"})
    with pytest.raises(DataError, match="is inf at data row 5; a regression target must be finite"):
        run(config, out=tmp_path / "run")
    config = _config(tmp_path, _table(tmp_path, [2.5] * 40), [MLP], data={"task": "regression"})
    with pytest.raises(DataError, match=r"is 2\.5 in every row; there is nothing to predict"):
        run(config, out=tmp_path / "run")


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        ({"data": {"balance": "class_weight"}}, "data.balance: class_weight balances classes"),
        ({"data": {"split": {"stratify": True}}}, "data.split.stratify: a regression target"),
        (
            {"evaluate": {"metrics": ["accuracy"]}},
            "evaluate.metrics: 'accuracy' is not a regression",
        ),
        ({"evaluate": {"primary": "f1_macro"}}, "evaluate.primary: 'f1_macro' is not a regression"),
    ],
)
def test_classification_options_under_regression_are_named(tmp_path, sections, message):
    config = _config(tmp_path, _diabetes(tmp_path), [MLP], **sections)
    with pytest.raises(ConfigError, match=message):
        run(config, out=tmp_path / "run")


def test_a_loss_that_does_not_fit_the_task_is_named(tmp_path):
    config = _config(tmp_path, _diabetes(tmp_path), [{**MLP, "loss": "cross_entropy"}])
    with pytest.raises(ConfigError, match=r"models.mlp.train.loss: cross_entropy does not fit"):
        run(config, out=tmp_path / "run")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "target": ["a", "b"] * 30})
    frame.to_csv(tmp_path / "c.csv", index=False)
    config = _config(tmp_path, tmp_path / "c.csv", [{**MLP, "loss": "mse"}])
    with pytest.raises(
        ConfigError, match=r"models.mlp.train.loss: mse does not fit classification"
    ):
        run(config, out=tmp_path / "run2")


def test_log1p_with_negative_targets_is_refused(tmp_path):
    values = [float(i) - 10.5 for i in range(60)]
    config = _config(
        tmp_path,
        _table(tmp_path, values),
        [MLP],
        data={"task": "regression", "target_transform": "log1p"},
    )
    with pytest.raises(DataError, match=r"data\.target_transform: log1p needs targets >= 0"):
        run(config, out=tmp_path / "run")


def test_ladder_predict_writes_prediction_lower_upper(tmp_path):
    from ladder.export.artifact import load
    from ladder.export.predictions import predictions_frame

    source = _diabetes(tmp_path)
    run(_config(tmp_path, source, [MLP], evaluate={"intervals": 0.8}), out=tmp_path / "run")
    model = load(tmp_path / "run" / "models" / "mlp" / "artifact")
    frame = predictions_frame(model, pd.read_csv(source).iloc[:7])
    assert list(frame.columns) == ["prediction", "lower", "upper"] and len(frame) == 7
    assert (frame["lower"] < frame["prediction"]).all() and (
        frame["prediction"] < frame["upper"]
    ).all()


def test_ladder_evaluate_scores_a_regression_artifact_on_new_data(tmp_path, capsys):
    from ladder.cli import main

    source = _diabetes(tmp_path)
    run(_config(tmp_path, source, [MLP]), out=tmp_path / "run")
    artifact = tmp_path / "run" / "models" / "mlp" / "artifact"
    fresh = tmp_path / "fresh.csv"
    pd.read_csv(source).iloc[:60].to_csv(fresh, index=False)
    capsys.readouterr()
    assert main(["evaluate", str(artifact), str(fresh)]) == 0
    out = capsys.readouterr().out
    assert "rmse" in out and "r2" in out and "accuracy" not in out


def test_cross_validation_of_a_regression_uses_plain_k_fold(tmp_path):
    source = _diabetes(tmp_path)
    models = [{"name": "ridge", "type": "ridge"}, {"name": "mean", "type": "mean"}]
    config = _config(tmp_path, source, models, evaluate={"cv": 3})
    result = run(config, out=tmp_path / "run")
    board = result.leaderboard.set_index("model")
    assert list(board.index) == ["ridge", "mean"]  # ranked by mean RMSE over the folds
    assert board.loc["ridge", "status"] == "ok (3-fold cv)"
    low, high = board.loc["ridge", ["rmse_ci_low", "rmse_ci_high"]]
    assert low < board.loc["ridge", "rmse"] < high  # mean -/+ one std over the folds
    assert board.loc["mean", "ttest_p"] < 0.05  # pooled out-of-fold errors: ridge is better
    cv = pd.read_csv(tmp_path / "run" / "cv.csv").set_index("model")
    assert {"rmse_mean", "rmse_std", "r2_mean"} <= set(cv.columns)
    tested = sum(
        len(
            pd.read_csv(
                tmp_path / "run" / "folds" / f"fold{k}" / "models/ridge/test_predictions.csv"
            )
        )
        for k in (1, 2, 3)
    )
    assert tested == 442  # every row is a test row exactly once


def test_regression_artifacts_predict_through_onnx_runtime_alone(tmp_path):
    import subprocess
    import sys

    source = _diabetes(tmp_path)
    models = [MLP, {"name": "gbdt", "type": "gradient_boosting", "max_iter": 20}]
    run(_config(tmp_path, source, models, data={"target_transform": "log1p"}), tmp_path / "run")
    for name in ("mlp", "gbdt"):
        folder = tmp_path / "run" / "models" / name / "artifact"
        code = (
            "import sys, ladder\n"
            f"model = ladder.load({str(folder)!r})\n"
            f"values = model.predict({str(source)!r})\n"
            "print(model.backend, 'torch' in sys.modules, 'sklearn' in sys.modules,"
            " round(float(values.mean())))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        backend, torch_loaded, sklearn_loaded, mean = out.stdout.split()
        assert (backend, torch_loaded, sklearn_loaded) == ("onnxruntime", "False", "False"), name
        native = ladder.load(folder, backend="torch" if name == "mlp" else "sklearn")
        assert abs(float(mean) - native.predict(str(source)).mean()) <= 1  # the target's units

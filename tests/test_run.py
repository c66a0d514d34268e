"""`ladder run`: every model on one split, cached reruns, failures that do not stop the ladder."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml
from helpers import write_config

from ladder.cli import main
from ladder.errors import ConfigError, LadderError
from ladder.evaluate.compare import LEADERBOARD_COLUMNS
from ladder.runner.ladder import run

MODELS = [
    {"name": "logreg", "type": "logistic_regression"},
    {"name": "tree", "type": "decision_tree", "max_depth": 2},
    {"name": "net", "type": "mlp", "hidden": [8]},
]


@pytest.fixture
def config(tmp_path, table_csv):
    return write_config(tmp_path, str(table_csv), MODELS, evaluate={"bootstrap": 200})


def test_every_model_on_the_same_split(config, tmp_path):
    result = run(config, out=tmp_path / "run")
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert sorted(board["model"]) == ["logreg", "net", "tree"]
    assert list(board["accuracy"]) == sorted(board["accuracy"], reverse=True)
    assert set(board["status"]) == {"ok"}
    assert (board["accuracy_ci_low"] <= board["accuracy"]).all()
    assert (board["accuracy"] <= board["accuracy_ci_high"]).all()
    assert (board["latency_ms"] > 0).all() and (board["size_bytes"] > 0).all()
    assert board["pareto"].any()
    best = board.iloc[0]
    assert best["mcnemar_p"] == 1.0  # the best model against itself
    assert list(result.leaderboard["model"]) == list(board["model"])
    assert (tmp_path / "run/leaderboard.md").read_text().count("\n") >= 4
    truths = {
        name: pd.read_csv(tmp_path / f"run/models/{name}/test_predictions.csv")["y_true"].tolist()
        for name in ("logreg", "tree", "net")
    }
    assert truths["logreg"] == truths["tree"] == truths["net"]  # the same test rows for all


def test_rerun_uses_the_cache_and_force_retrains(config, tmp_path):
    run(config, out=tmp_path / "run")
    metrics = tmp_path / "run/models/net/metrics.json"
    before = metrics.read_text()
    again = run(config, out=tmp_path / "run")
    assert set(again.status.values()) == {"cached"}
    assert metrics.read_text() == before
    changed = run(config, out=tmp_path / "run", overrides=["models.tree.max_depth=3"])
    assert changed.status == {"logreg": "cached", "tree": "ok", "net": "cached"}
    forced = run(config, out=tmp_path / "run", force=True, only=["logreg"])
    assert forced.status["logreg"] == "ok"


def test_a_partial_rerun_ranks_cached_and_retrained_models_together(config, tmp_path):
    first = run(config, out=tmp_path / "run")
    worst = first.leaderboard["model"].iloc[-1]
    again = run(config, out=tmp_path / "run", force=True, only=[worst])
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert dict(zip(board["model"], board["status"], strict=True))[worst] == "ok"
    assert set(board["status"]) == {"ok", "cached"}
    assert list(board["accuracy"]) == sorted(board["accuracy"], reverse=True)
    assert list(again.leaderboard["model"]) == list(first.leaderboard["model"])
    best = first.leaderboard["model"].iloc[0]
    assert f"Best model: {best}" in (tmp_path / "run/report.html").read_text()


def test_a_failing_model_is_reported_and_the_others_run(tmp_path, table_csv, capsys):
    models = [*MODELS[:1], {"name": "conv", "type": "cnn"}]
    config = write_config(tmp_path, str(table_csv), models)
    code = main(["run", str(config), "--out", str(tmp_path / "run")])
    assert code == 1
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    status = dict(zip(board["model"], board["status"], strict=True))
    assert status["logreg"] == "ok"
    assert status["conv"].startswith("failed") and "needs image data" in status["conv"]
    assert "conv failed" in capsys.readouterr().err


def test_a_failed_model_keeps_its_traceback_and_debug_prints_it(tmp_path, table_csv, capsys):
    models = [*MODELS[:1], {"name": "conv", "type": "cnn"}]
    config = write_config(tmp_path, str(table_csv), models)
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 1
    error = tmp_path / "run/models/conv/error.txt"
    text = error.read_text()
    assert text.startswith("Traceback (most recent call last):") and "needs image data" in text
    err = capsys.readouterr().err
    assert "traceback: models/conv/error.txt" in err and "Traceback" not in err

    assert main(["--debug", "run", str(config), "--out", str(tmp_path / "run")]) == 1
    assert "Traceback (most recent call last):" in capsys.readouterr().err

    fixed = write_config(tmp_path, str(table_csv), [*MODELS[:1], {"name": "conv", "type": "mlp"}])
    assert main(["run", str(fixed), "--out", str(tmp_path / "run")]) == 0
    assert not error.exists()  # trained this time: the old traceback is gone


def test_a_model_trained_by_ladder_train_is_a_finished_rung(tmp_path, table_csv, capsys):
    quantize = [{"method": "quantize", "models": ["net"]}]
    config = write_config(tmp_path, str(table_csv), MODELS, compress=quantize)
    out = tmp_path / "run"
    assert main(["train", str(config), "--model", "net", "--out", str(out)]) == 0
    assert main(["compress", str(out)]) == 0  # the trained model is found
    assert "net+int8" in pd.read_csv(out / "leaderboard.csv")["model"].tolist()
    result = run(config, out=out)
    assert result.status["net"] == "cached"  # not trained again
    assert result.status["net+int8"] == "cached"


def test_only_leaves_out_the_compression_of_models_it_left_out(tmp_path, table_csv, capsys):
    quantize = [{"method": "quantize", "models": ["net"]}]
    config = write_config(tmp_path, str(table_csv), MODELS, compress=quantize)
    code = main(["run", str(config), "--out", str(tmp_path / "run"), "--only", "logreg"])
    assert code == 0
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert board["model"].tolist() == ["logreg"]
    assert capsys.readouterr().err.count("net+int8: skipped") == 1


def test_only_names_must_exist(config, tmp_path):
    with pytest.raises(ConfigError, match="--only forest: no such model"):
        run(config, out=tmp_path / "run", only=["forest"])


def test_a_folder_of_another_config_is_refused(config, tmp_path):
    run(config, out=tmp_path / "run", only=["logreg"])
    with pytest.raises(LadderError, match=r"different config .*data.*--force"):
        run(config, out=tmp_path / "run", overrides=["data.split.test=0.3"])
    forced = run(config, out=tmp_path / "run", overrides=["data.split.test=0.3"], force=True)
    assert forced.status["logreg"] == "ok"
    assert json.loads((tmp_path / "run/data.json").read_text())["rows"]["test"] == 27


def test_a_folder_saved_before_a_data_key_existed_is_the_same_config(config, tmp_path):
    run(config, out=tmp_path / "run", only=["logreg"])
    saved = tmp_path / "run/config.yaml"
    old = yaml.safe_load(saved.read_text())
    del old["data"]["non_finite"]  # as an earlier ladder wrote it
    saved.write_text(yaml.safe_dump(old))
    assert run(config, out=tmp_path / "run", only=["logreg"]).status["logreg"] == "cached"


def test_report_rerenders_without_training(config, tmp_path, capsys):
    run(config, out=tmp_path / "run", only=["logreg"])
    (tmp_path / "run/report.html").unlink()
    assert main(["report", str(tmp_path / "run")]) == 0
    assert (tmp_path / "run/report.html").is_file()
    assert main(["report", str(tmp_path)]) == 2  # no results there


def test_cross_validation_reports_mean_and_std(tmp_path, table_csv):
    models = [MODELS[0], MODELS[1]]
    config = write_config(tmp_path, str(table_csv), models, evaluate={"cv": 3, "bootstrap": 0})
    result = run(config, out=tmp_path / "run")
    board = pd.read_csv(tmp_path / "run/leaderboard.csv")
    assert tuple(board.columns) == LEADERBOARD_COLUMNS
    assert set(board["status"]) == {"ok (3-fold cv)"}
    cv = pd.read_csv(tmp_path / "run/cv.csv").set_index("model")
    folds = [
        json.loads((tmp_path / f"run/folds/fold{k}/models/logreg/metrics.json").read_text())
        for k in (1, 2, 3)
    ]
    accuracies = [f["accuracy"] for f in folds]
    assert cv.loc["logreg", "accuracy_mean"] == pytest.approx(sum(accuracies) / 3)
    assert cv.loc["logreg", "accuracy_std"] == pytest.approx(pd.Series(accuracies).std())
    tested = sum(
        len(pd.read_csv(tmp_path / f"run/folds/fold{k}/models/tree/test_predictions.csv"))
        for k in (1, 2, 3)
    )
    assert tested == 90  # every row is tested exactly once
    assert result.leaderboard["mcnemar_p"].notna().all()


def test_run_is_public_and_returns_the_leaderboard(config, tmp_path):
    import ladder

    result = ladder.run(config, out=tmp_path / "run", only=["logreg"])
    assert list(result.leaderboard["model"]) == ["logreg"]

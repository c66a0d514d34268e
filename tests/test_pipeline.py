"""`train_model` end to end on tiny data: run folder, metrics, artifact round trip."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from helpers import make_table, write_config

import ladder
from ladder.config import load_config
from ladder.errors import DataError
from ladder.runner.ladder import train, train_model

METRIC_KEYS = {
    "accuracy",
    "balanced_accuracy",
    "f1_macro",
    "f1_weighted",
    "precision_macro",
    "recall_macro",
    "roc_auc",
    "log_loss",
    "confusion_matrix",
    "labels",
}


def test_classical_model_on_a_csv_writes_the_run_folder(tmp_path, table_csv):
    config = write_config(tmp_path, str(table_csv), [{"name": "forest", "type": "random_forest"}])
    result = train(config, "forest", out=tmp_path / "run")

    run = tmp_path / "run"
    assert (run / "config.yaml").read_text().startswith("ladder_version:")
    data = json.loads((run / "data.json").read_text())
    assert data["rows"] == {"train": 54, "val": 18, "test": 18, "total": 90}
    assert len(data["sha256"]) == 64
    metrics = json.loads((run / "models/forest/metrics.json").read_text())
    assert metrics.keys() >= METRIC_KEYS
    assert metrics["accuracy"] > 0.9  # the classes are well separated
    assert metrics["labels"] == ["cat", "dog", "fox"]
    assert {p.name for p in (run / "models/forest/plots").iterdir()} == {
        "confusion_matrix.png",
        "roc.png",
    }
    assert result.artifact == run / "models/forest/artifact"
    assert {p.name for p in result.artifact.iterdir()} == {
        "manifest.json",
        "preprocess.json",
        "labels.json",
        "model.skops",
        "model.onnx",
    }


def test_saved_model_predicts_like_the_trained_one(tmp_path, table_csv):
    config = write_config(tmp_path, str(table_csv), [{"name": "net", "type": "mlp", "hidden": [8]}])
    result = train(config, "net", out=tmp_path / "run")
    model = ladder.load(result.artifact)

    rows = make_table(n=30, seed=1).drop(columns="label")
    proba = model.predict_proba(rows)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    as_dicts = model.predict_proba(rows.to_dict(orient="records"))
    np.testing.assert_allclose(as_dicts, proba, rtol=1e-6)
    assert set(model.predict(rows)) <= {"cat", "dog", "fox"}
    history = pd.read_csv(tmp_path / "run/models/net/history.csv")
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"lr", "train_loss", "val_loss", "val_accuracy", "seconds"} <= set(history.columns)
    assert (tmp_path / "run/models/net/checkpoints/last/weights.safetensors").is_file()
    assert (tmp_path / "run/models/net/plots/learning_curve.png").is_file()


def test_test_metrics_match_the_loaded_artifact(tmp_path, table_csv):
    config_path = write_config(
        tmp_path, str(table_csv), [{"name": "lr", "type": "logistic_regression"}]
    )
    result = train(config_path, "lr", out=tmp_path / "run")
    from ladder.runner.score import evaluate_artifact

    again = evaluate_artifact(result.artifact, str(table_csv))
    assert again["labels"] == result.metrics["labels"]
    assert 0.9 < again["accuracy"] <= 1.0  # the whole file, mostly training rows


def test_cnn_on_an_image_folder_with_augmentation(tmp_path, image_folder):
    models = [{"name": "cnn", "type": "cnn", "arch": "simple", "channels": [4], "image_size": 8}]
    config = write_config(
        tmp_path,
        str(image_folder),
        models,
    )
    cfg = load_config(
        config, ["data.split.test=0.34", "data.split.val=0.0", "data.augment.hflip=true"]
    )
    result = train_model(cfg, "cnn", tmp_path / "run")
    manifest = json.loads((result.artifact / "manifest.json").read_text())
    assert manifest["input"]["kind"] == "image"
    assert manifest["feature_shape"] == [3, 8, 8]
    model = ladder.load(result.artifact)
    frame_proba = model.predict_proba(image_folder / "dark")
    assert frame_proba.shape == (6, 2)


def minority_recall(tmp_path, balance: str, model: dict) -> float:
    """Test recall of the 10% class on a skewed, overlapping 1-D problem."""
    rng = np.random.default_rng(0)
    n = 400
    label = (np.arange(n) % 10 == 0).astype(int)
    frame = pd.DataFrame({"x": label * 1.5 + rng.normal(0, 1.0, n), "label": label})
    frame.to_csv(tmp_path / "skewed.csv", index=False)
    config = write_config(tmp_path, str(tmp_path / "skewed.csv"), [{"name": "m", **model}])
    overrides = [f"data.balance={balance}", "train.epochs=15", "train.optimizer.lr=0.02"]
    result = train_model(load_config(config, overrides), "m", tmp_path / balance)
    cm = np.asarray(result.metrics["confusion_matrix"])
    return cm[1, 1] / cm[1].sum()


@pytest.mark.parametrize("model", [{"type": "logistic_regression"}, {"type": "mlp", "hidden": [8]}])
def test_balance_modes_raise_minority_recall_on_skewed_data(tmp_path, model):
    plain = minority_recall(tmp_path, "none", model)
    weighted = minority_recall(tmp_path, "class_weight", model)
    oversampled = minority_recall(tmp_path, "oversample", model)
    assert plain < 0.5  # the majority class dominates without balancing
    assert weighted > plain + 0.2
    assert oversampled > plain + 0.2


def test_a_failed_run_leaves_the_previous_artifact_intact(tmp_path, table_csv):
    config = write_config(tmp_path, str(table_csv), [{"name": "tree", "type": "decision_tree"}])
    first = train(config, "tree", out=tmp_path / "run")
    before = {p.name: p.read_bytes() for p in first.artifact.iterdir()}
    metrics_before = (first.model_dir / "metrics.json").read_text()

    table_csv.write_text("size,weight,colour\n1,2,red\n")  # the target column is gone
    with pytest.raises(DataError, match="label"):
        train(config, "tree", out=tmp_path / "run")
    assert {p.name: p.read_bytes() for p in first.artifact.iterdir()} == before
    assert (first.model_dir / "metrics.json").read_text() == metrics_before


def test_cnn_on_tabular_data_is_a_clear_error(tmp_path, table_csv):
    config = write_config(tmp_path, str(table_csv), [{"name": "c", "type": "cnn"}])
    with pytest.raises(ladder.LadderError, match="needs image data"):
        train(config, "c", out=tmp_path / "run")

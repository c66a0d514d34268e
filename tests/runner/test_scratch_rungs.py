"""The NumPy rungs inside a whole `ladder run`: ranked beside their PyTorch twins, exported and
verified, compressed, and refusing what NumPy lacks with one line."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from helpers import make_table, write_config

from ladder.cli import main
from ladder.runner.ladder import run

TWINS = [
    {"name": "torch-mlp", "type": "mlp", "hidden": [16]},
    {"name": "numpy-mlp", "type": "scratch_mlp", "hidden": [16]},
]


@pytest.fixture(scope="module")
def twin_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("scratch")
    table = tmp / "animals.csv"
    make_table(n=120).to_csv(table, index=False)
    compress = [
        {"method": "prune", "amount": 0.5, "finetune_epochs": 1, "models": ["numpy-mlp"]},
        {"method": "quantize", "models": ["numpy-mlp"]},
        {"method": "quantize", "backend": "torch", "models": ["numpy-mlp"]},
        {"method": "distill", "teacher": "torch-mlp", "student": {"type": "scratch_mlp"}},
    ]
    config = write_config(tmp, str(table), TWINS, compress=compress, evaluate={"bootstrap": 50})
    run(config, out=tmp / "run")
    return tmp / "run"


def test_the_numpy_rung_predicts_what_its_pytorch_twin_predicts(twin_run):
    board = pd.read_csv(twin_run / "leaderboard.csv").set_index("model")
    assert board.loc["numpy-mlp", "status"] == "ok" and board.loc["numpy-mlp", "type"] == (
        "scratch_mlp"
    )
    torch_metrics = json.loads((twin_run / "models/torch-mlp/metrics.json").read_text())
    numpy_metrics = json.loads((twin_run / "models/numpy-mlp/metrics.json").read_text())
    assert numpy_metrics["log_loss"] == pytest.approx(torch_metrics["log_loss"], rel=1e-5)
    torch_rows = pd.read_csv(twin_run / "models/torch-mlp/test_predictions.csv")
    numpy_rows = pd.read_csv(twin_run / "models/numpy-mlp/test_predictions.csv")
    pd.testing.assert_frame_equal(torch_rows, numpy_rows, rtol=1e-4)


def test_the_artifact_is_onnx_verified_against_the_numpy_predictions(twin_run):
    manifest = json.loads((twin_run / "models/numpy-mlp/artifact/manifest.json").read_text())
    assert manifest["model_type"] == "scratch_mlp"
    assert manifest["onnx"]["exported"] and manifest["onnx"]["max_abs_diff"] < 1e-4


def test_a_numpy_rung_is_pruned_quantized_and_distilled_into(twin_run):
    board = pd.read_csv(twin_run / "leaderboard.csv").set_index("model")
    assert board.loc["numpy-mlp+prune50", "status"] == "ok"
    pruned = json.loads((twin_run / "models/numpy-mlp+prune50/metrics.json").read_text())
    assert pruned["sparsity"] == pytest.approx(0.5, abs=0.01)  # fine-tuned in NumPy, still 50%
    artifact = twin_run / "models/numpy-mlp+prune50/artifact/manifest.json"
    assert json.loads(artifact.read_text())["onnx"]["max_abs_diff"] < 1e-4
    assert board.loc["numpy-mlp+int8", "status"] == "ok"
    assert board.loc["torch-mlp→scratch_mlp", "status"] == "ok"
    refused = board.loc["numpy-mlp+int8-torch", "status"]
    assert "whose layers are NumPy code" in refused and "use backend onnxruntime" in refused


def test_a_feature_numpy_lacks_is_one_line_naming_the_pytorch_rung(tmp_path, table_csv, capsys):
    models = [{"name": "numpy-mlp", "type": "scratch_mlp", "precision": "bf16"}]
    config = write_config(tmp_path, str(table_csv), models)
    code = main(["run", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "models[0]: scratch_mlp has no train.precision bf16" in err and "use type mlp" in err
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_the_gpu_asked_for_by_name_is_refused_naming_the_pytorch_rung(tmp_path, table_csv, capsys):
    """On any machine, with or without CUDA: the refusal is the scratch rung's, not 'no GPU'."""
    models = [{"name": "numpy-mlp", "type": "scratch_mlp"}]
    config = write_config(tmp_path, str(table_csv), models, device="cuda")
    code = main(["train", str(config), "--model", "numpy-mlp", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "Traceback" not in err and len(err.splitlines()) == 1
    assert "scratch_mlp has no device cuda (it computes in NumPy on the CPU)" in err
    assert "use type mlp for that" in err

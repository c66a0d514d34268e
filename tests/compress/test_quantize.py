"""`ladder compress`: int8 variants of a run's models, evaluated on the run's own test split and
ranked beside the originals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import make_table, write_config

import ladder
from ladder.cli import main
from ladder.compress.quantize import quantize_artifact
from ladder.compress.run import compress_run
from ladder.errors import ArtifactError, ConfigError, LadderError
from ladder.runner.ladder import run

MODELS = [
    {"name": "net", "type": "mlp", "hidden": [32], "epochs": 30},
    {"name": "tree", "type": "decision_tree", "max_depth": 3},
    {"name": "svm", "type": "svm"},  # skl2onnx cannot convert its calibrated SVC: no ONNX
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("compress")
    table = tmp / "animals.csv"
    make_table(n=150).to_csv(table, index=False)
    config = write_config(
        tmp, str(table), MODELS, compress=[{"method": "quantize"}], evaluate={"bootstrap": 50}
    )
    run(config, out=tmp / "run")
    return tmp / "run"


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "run"))


def test_compress_adds_an_int8_variant_of_each_neural_model(run_copy):
    result = compress_run(run_copy)
    board = result.leaderboard.set_index("model")
    assert "net+int8" in board.index and "tree+int8" not in board.index  # default: neural only
    assert board.loc["net+int8", "status"] == "ok" and board.loc["net", "status"] == "cached"
    metrics = json.loads((run_copy / "models/net+int8/metrics.json").read_text())
    assert metrics["variant_of"] == "net"
    assert metrics["accuracy_delta"] == pytest.approx(
        metrics["accuracy"] - board.loc["net", "accuracy"]
    )
    assert abs(metrics["accuracy_delta"]) <= 0.1
    manifest = json.loads((run_copy / "models/net+int8/artifact/manifest.json").read_text())
    assert manifest["compression"]["weights"] == "int8"
    assert "weights.safetensors" not in manifest["files"]


def test_the_variant_predicts_like_the_original_with_onnx_runtime_only(run_copy):
    compress_run(run_copy)
    table = make_table(n=30, seed=3)
    variant = ladder.load(run_copy / "models/net+int8/artifact")
    original = ladder.load(run_copy / "models/net/artifact")
    assert variant.backend == "onnxruntime"
    got, want = variant.predict_proba(table), original.predict_proba(table)
    assert 0 < np.abs(got - want).max() < 0.15  # int8 weights: close, not identical
    assert (got.argmax(axis=1) == want.argmax(axis=1)).mean() >= 0.9
    with pytest.raises(ArtifactError, match="compressed variant predicts with onnxruntime only"):
        ladder.load(run_copy / "models/net+int8/artifact", backend="torch")


def test_models_without_onnx_or_without_weights_to_quantize_say_so(finished_run, tmp_path):
    models = finished_run / "models"
    with pytest.raises(LadderError, match=r"svm: cannot quantize with onnxruntime.*skl2onnx"):
        quantize_artifact(models / "svm/artifact", tmp_path / "a", "svm")
    with pytest.raises(LadderError, match="tree: nothing to quantize"):
        quantize_artifact(models / "tree/artifact", tmp_path / "b", "tree")


def _rerun(run_dir: Path, **changes) -> ladder.RunResult:
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    config = {k: v for k, v in config.items() if k not in ("ladder_version", "config_dir")}
    config.update(changes)
    (run_dir.parent / "changed.yaml").write_text(yaml.safe_dump(config))
    return run(run_dir.parent / "changed.yaml", out=run_dir)


def test_ladder_run_makes_the_variants_and_reuses_them_while_the_original_is_unchanged(
    finished_run, run_copy
):
    board = pd.read_csv(finished_run / "leaderboard.csv").set_index("model")
    assert board.loc["net+int8", "variant_of"] == "net"
    assert board.loc["net+int8", "accuracy_delta"] == pytest.approx(
        board.loc["net+int8", "accuracy"] - board.loc["net", "accuracy"]
    )
    onnx = run_copy / "models/net+int8/artifact/model.onnx"
    made = onnx.stat().st_mtime_ns
    _rerun(run_copy)
    assert onnx.stat().st_mtime_ns == made  # cached original: the variant is kept


def test_retraining_a_model_remakes_or_drops_its_stale_variant(run_copy):
    old = json.loads((run_copy / "models/net+int8/artifact/manifest.json").read_text())
    models = yaml.safe_load((run_copy / "config.yaml").read_text())["models"]
    models[0]["hidden"] = [16]
    _rerun(run_copy, models=models)
    new = json.loads((run_copy / "models/net+int8/artifact/manifest.json").read_text())
    assert new["files"]["model.onnx"] != old["files"]["model.onnx"]  # from the new weights
    models[0]["hidden"] = [8]
    result = _rerun(run_copy, models=models, compress=[])
    assert not (run_copy / "models/net+int8").exists()
    assert "net+int8" not in set(result.leaderboard["model"])


def test_compress_errors_are_one_line(run_copy, capsys):
    config = yaml.safe_load((run_copy / "config.yaml").read_text())
    config["compress"] = []
    (run_copy / "config.yaml").write_text(yaml.safe_dump(config))
    assert main(["compress", str(run_copy)]) == 2
    assert "has no compress: section" in capsys.readouterr().err
    argv = ["compress", str(run_copy), "--set", "compress=[{method: quantize, models: [nett]}]"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "compress[0].models[0]: no model named 'nett'; did you mean 'net'" in err
    assert main(["compress", str(run_copy.parent)]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_compress_entries_are_validated(tmp_path, table_csv):
    config = write_config(
        tmp_path, str(table_csv), MODELS[:1], compress=[{"method": "prune", "amount": 2}]
    )
    with pytest.raises(ConfigError) as info:
        ladder.load_config(config)
    assert any(p.startswith("compress[0]") for p in info.value.problems)


def test_a_failing_request_is_a_failed_row_and_the_others_go_on(run_copy):
    result = _rerun(run_copy, compress=[{"method": "quantize", "models": ["tree", "net"]}])
    board = result.leaderboard.set_index("model")
    assert board.loc["net+int8", "status"] == "ok"
    assert board.loc["tree+int8", "status"].startswith("failed: tree: nothing to quantize")
    assert "tree+int8" in result.failed
    with pytest.raises(LadderError, match=r"^tree\+int8: tree: nothing to quantize"):
        compress_run(run_copy)
    board = pd.read_csv(run_copy / "leaderboard.csv").set_index("model")
    assert board.loc["net+int8", "status"] == "ok"  # still ranked after the failure

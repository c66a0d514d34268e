"""ONNX export: every artifact that can be exported gains a verified model.onnx; ONNX Runtime
is the default backend, gives the original model's probabilities and imports neither torch nor
scikit-learn; `ladder export` re-exports; what cannot be exported says why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_config

import ladder
from ladder.cli import main
from ladder.errors import ArtifactError
from ladder.export.onnx import ExportError, export_neural
from ladder.export.reexport import export_artifact, synthetic_features
from ladder.pipeline import train

MODELS = [
    {"name": "logreg", "type": "logistic_regression"},
    {"name": "net", "type": "mlp", "hidden": [8]},
    {"name": "boost", "type": "gradient_boosting", "max_iter": 5},
]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    from helpers import make_table

    tmp = tmp_path_factory.mktemp("onnx")
    table = tmp / "animals.csv"
    make_table().to_csv(table, index=False)
    config = write_config(tmp, str(table), MODELS)
    for entry in MODELS:
        train(config, entry["name"], out=tmp / "run")
    return tmp / "run"


def artifact(run_dir: Path, name: str) -> Path:
    return run_dir / "models" / name / "artifact"


@pytest.mark.parametrize("name", ["logreg", "net"])
def test_the_artifact_holds_a_verified_onnx_model(run_dir, name):
    manifest = json.loads((artifact(run_dir, name) / "manifest.json").read_text())
    assert "model.onnx" in manifest["files"]
    onnx = manifest["onnx"]
    assert onnx["exported"] and onnx["opset"] == 17 and onnx["rows_checked"] > 0
    assert 0 <= onnx["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize(("name", "native"), [("logreg", "sklearn"), ("net", "torch")])
def test_both_backends_predict_the_same(run_dir, name, native, table_csv):
    default = ladder.load(artifact(run_dir, name))
    original = ladder.load(artifact(run_dir, name), backend=native)
    assert (default.backend, original.backend) == ("onnxruntime", native)
    np.testing.assert_allclose(
        default.predict_proba(table_csv), original.predict_proba(table_csv), atol=1e-4
    )
    assert list(default.predict(table_csv)) == list(original.predict(table_csv))


def test_a_model_that_cannot_be_exported_keeps_its_reason(run_dir, capsys):
    folder = artifact(run_dir, "boost")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "model.onnx" not in manifest["files"] and not manifest["onnx"]["exported"]
    assert "skl2onnx cannot convert HistGradientBoostingClassifier" in manifest["onnx"]["reason"]
    assert ladder.load(folder).backend == "sklearn"  # the default falls back to the original
    with pytest.raises(ArtifactError, match=r"no model\.onnx .*use --backend sklearn"):
        ladder.load(folder, backend="onnxruntime")
    assert main(["export", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "HistGradientBoostingClassifier" in err


def test_a_backend_the_model_does_not_have_is_refused(run_dir):
    with pytest.raises(ArtifactError, match="a neural model predicts with onnxruntime or torch"):
        ladder.load(artifact(run_dir, "net"), backend="sklearn")


def test_predict_takes_a_backend(run_dir, table_csv, tmp_path):
    outputs = {}
    for backend in ("onnxruntime", "torch"):
        out = tmp_path / f"{backend}.csv"
        argv = ["predict", str(artifact(run_dir, "net")), str(table_csv), "--output", str(out)]
        assert main([*argv, "--backend", backend]) == 0
        outputs[backend] = np.loadtxt(out, delimiter=",", skiprows=1, usecols=(1, 2, 3))
    np.testing.assert_allclose(outputs["onnxruntime"], outputs["torch"], atol=1e-4)


def test_onnx_runtime_predictions_import_neither_torch_nor_sklearn(run_dir, table_csv):
    code = (
        "import sys, ladder\n"
        f"model = ladder.load({str(artifact(run_dir, 'net'))!r})\n"
        f"model.predict({str(table_csv)!r})\n"
        "print(model.backend, 'torch' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["onnxruntime", "False", "False"]


def test_a_tampered_onnx_model_is_refused(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "artifact"
    shutil.copytree(artifact(run_dir, "logreg"), copy)
    with (copy / "model.onnx").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ArtifactError, match=r"model\.onnx: checksum mismatch"):
        ladder.load(copy)


def test_ladder_export_rewrites_the_onnx_model(run_dir, tmp_path, capsys, table_csv):
    import shutil

    copy = tmp_path / "artifact"
    shutil.copytree(artifact(run_dir, "net"), copy)
    before = ladder.load(copy).predict_proba(table_csv)
    assert main(["export", str(copy), "--format", "onnx"]) == 0
    assert "max abs difference" in capsys.readouterr().out
    manifest = json.loads((copy / "manifest.json").read_text())
    assert manifest["onnx"]["exported"] and manifest["onnx"]["checked_on"] == "synthetic rows"
    np.testing.assert_allclose(ladder.load(copy).predict_proba(table_csv), before, atol=1e-6)
    assert export_artifact(copy)["max_abs_diff"] <= 1e-4  # idempotent


def test_synthetic_token_ids_are_right_padded():
    ids = synthetic_features({"feature_shape": [12, 30], "pad_id": 0}, n=50)
    assert ids.dtype == np.int64 and ids.shape == (50, 12)
    real = ids != 0
    assert real[:, 0].all()  # at least one token
    assert (np.diff(real.astype(int), axis=1) <= 0).all()  # no token after padding


def test_an_unsupported_op_names_the_module():
    import torch

    class Odd(torch.nn.Module):
        def forward(self, x):
            return torch.linalg.eig(x)[0].real  # no ONNX symbolic for eig

    with pytest.raises(ExportError, match="cannot export Odd to ONNX"):
        export_neural(Odd(), np.eye(3, dtype=np.float32)[None])

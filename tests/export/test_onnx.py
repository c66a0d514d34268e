"""ONNX export: every artifact that can be exported gains a verified model.onnx; ONNX Runtime
is the default backend, gives the original model's probabilities and imports neither torch nor
scikit-learn; `ladder export` re-exports; what cannot be exported says why. TF-IDF text models
export their classifier, vectorised by the numpy runtime (tests/export/test_tfidf_runtime.py)."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_config

import ladder
from ladder.cli import main
from ladder.errors import ArtifactError
from ladder.export.artifact import manifest_body, read_manifest, write_artifact
from ladder.export.onnx import (
    METADATA_KEY,
    ExportError,
    OnnxPredictor,
    export_model,
    export_neural,
    export_tfidf,
)
from ladder.export.reexport import export_artifact, synthetic_features
from ladder.runner.ladder import train

MODELS = [
    {"name": "logreg", "type": "logistic_regression"},
    {"name": "net", "type": "mlp", "hidden": [8]},
    {"name": "boost", "type": "gradient_boosting", "max_iter": 5},
    {"name": "far", "type": "knn", "metric": "chebyshev"},  # skl2onnx lacks this metric
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


@pytest.mark.parametrize("name", ["logreg", "net", "boost"])
def test_the_artifact_holds_a_verified_onnx_model(run_dir, name):
    manifest = json.loads((artifact(run_dir, name) / "manifest.json").read_text())
    assert "model.onnx" in manifest["files"]
    onnx = manifest["onnx"]
    assert onnx["exported"] and onnx["opset"] == 17 and onnx["rows_checked"] > 0
    assert 0 <= onnx["max_abs_diff"] <= 1e-4


@pytest.mark.parametrize(
    ("name", "native"), [("logreg", "sklearn"), ("net", "torch"), ("boost", "sklearn")]
)
def test_both_backends_predict_the_same(run_dir, name, native, table_csv):
    default = ladder.load(artifact(run_dir, name))
    original = ladder.load(artifact(run_dir, name), backend=native)
    assert (default.backend, original.backend) == ("onnxruntime", native)
    np.testing.assert_allclose(
        default.predict_proba(table_csv), original.predict_proba(table_csv), atol=1e-4
    )
    assert list(default.predict(table_csv)) == list(original.predict(table_csv))


def test_a_model_that_cannot_be_exported_keeps_its_reason(run_dir, capsys):
    folder = artifact(run_dir, "far")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "model.onnx" not in manifest["files"] and not manifest["onnx"]["exported"]
    assert "skl2onnx cannot convert KNeighborsClassifier" in manifest["onnx"]["reason"]
    assert ladder.load(folder).backend == "sklearn"  # the default falls back to the original
    with pytest.raises(ArtifactError, match=r"no model\.onnx .*use --backend sklearn"):
        ladder.load(folder, backend="onnxruntime")
    assert main(["export", str(folder)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "KNeighborsClassifier" in err


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
    assert imports_after_predict(artifact(run_dir, "net"), str(table_csv)) == [
        "onnxruntime",
        "False",
        "False",
    ]


def imports_after_predict(folder: Path, records: object) -> list[str]:
    """In a fresh interpreter: the backend, and whether torch and sklearn were imported, after
    loading `folder` and predicting `records`."""
    code = (
        "import sys, ladder\n"
        f"model = ladder.load({str(folder)!r})\n"
        f"model.predict({records!r})\n"
        "print(model.backend, 'torch' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.split()


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


# ----------------------------------------------------------------------------- TF-IDF text models

TEXT_MODELS = [
    {"name": "tfidf_logreg", "type": "tfidf_logreg"},
    {"name": "tfidf_svm", "type": "tfidf_svm", "char_ngrams": [1, 3]},
]
CUES = {"cat": "purr whiskers 猫", "dog": "bark fetch 犬", "fox": "sly den 狐"}
UNICODE_TEXTS = [
    "",
    "   \t\n ",
    "PURR purr Whiskers",
    "Café naïve crème brûlée",
    "猫 犬 狐 日本語のテキスト",
    "😀 bark 😀😀 fetch🐕",
    "İstanbul ΟΔΟΣ straße",
    "never seen words at all",
]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory) -> Path:
    import pandas as pd

    tmp = tmp_path_factory.mktemp("tfidf")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(60):
        label = list(CUES)[i % 3]
        words = [*rng.choice(CUES[label].split(), 2), *rng.choice(["the", "a", "é", "😀"], 2)]
        rows.append({"text": " ".join(rng.permutation(words)), "label": label})
    rows[0]["text"] = ""  # an empty text in training and in the checked rows
    table = tmp / "texts.csv"
    pd.DataFrame(rows).to_csv(table, index=False)
    config = write_config(tmp, str(table), TEXT_MODELS)
    config.write_text(config.read_text().replace("target: label", "target: label\n  text: text"))
    for entry in TEXT_MODELS:
        train(config, entry["name"], out=tmp / "run")
    return tmp / "run"


@pytest.mark.parametrize("name", ["tfidf_logreg", "tfidf_svm"])
def test_tfidf_artifacts_hold_a_verified_onnx_model(text_run, name):
    import onnx

    folder = artifact(text_run, name)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "model.onnx" in manifest["files"] and manifest["onnx"]["exported"]
    assert manifest["onnx"]["rows_checked"] > 0 and manifest["onnx"]["max_abs_diff"] <= 1e-4
    graph = onnx.load(str(folder / "model.onnx"))
    assert [i.name for i in graph.graph.input] == ["ids", "values"]
    assert METADATA_KEY in {p.key for p in graph.metadata_props}  # the vectoriser, as JSON
    assert ladder.load(folder).backend == "onnxruntime"


@pytest.mark.parametrize("name", ["tfidf_logreg", "tfidf_svm"])
def test_tfidf_backends_agree_on_unicode_and_empty_texts(text_run, name):
    onnx_model = ladder.load(artifact(text_run, name))
    sklearn_model = ladder.load(artifact(text_run, name), backend="sklearn")
    texts = UNICODE_TEXTS * 3
    got, want = onnx_model.predict_proba(texts), sklearn_model.predict_proba(texts)
    assert got.shape == (len(texts), 3)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    assert list(onnx_model.predict(texts)) == list(sklearn_model.predict(texts))
    assert onnx_model.predict(["purr whiskers"])[0] == "cat"  # it learned the cues
    assert onnx_model.predict_features(np.array([], dtype=object)).shape == (0, 3)


def test_tfidf_onnx_predictions_import_neither_torch_nor_sklearn(text_run):
    records = ["purr whiskers", "", "😀 犬"]
    assert imports_after_predict(artifact(text_run, "tfidf_svm"), records) == [
        "onnxruntime",
        "False",
        "False",
    ]


def test_many_texts_in_small_batches_give_the_same_probabilities(text_run, monkeypatch):
    import ladder.export.onnx as onnx_module

    model = ladder.load(artifact(text_run, "tfidf_logreg"))
    texts = [UNICODE_TEXTS[i % 8] + " purr" * (i % 5) for i in range(200)]
    whole = model.predict_proba(texts)
    monkeypatch.setattr(onnx_module, "_TFIDF_TEXTS", 64)  # vectorised in 4 parts
    monkeypatch.setattr(onnx_module, "_TFIDF_CELLS", 16)  # many ONNX Runtime calls
    # the same up to rounding: ONNX Runtime sums a batch's widths in another order
    np.testing.assert_allclose(model.predict_proba(texts), whole, rtol=0, atol=1e-12)


def tiny_texts(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    words = list(CUES.values())[:n_classes]
    texts = [f"{words[i % n_classes]} the {i % 4}" for i in range(12 * n_classes)]
    return np.array(texts, dtype=object), np.arange(12 * n_classes) % n_classes


@pytest.mark.parametrize("n_classes", [2, 3])
def test_an_ensemble_of_calibrated_svms_exports_exactly(n_classes):
    from ladder.models import tfidf

    pipeline = tfidf.build(tfidf.TfidfSVMConfig(), (), n_classes)
    pipeline.set_params(clf__ensemble=True, clf__cv=2)  # averages 2 calibrated LinearSVCs
    x, y = tiny_texts(n_classes)
    pipeline.fit(x, y)
    assert len(pipeline.steps[1][1].calibrated_classifiers_) == 2
    texts = np.array([*x, *UNICODE_TEXTS], dtype=object)
    graph, info = export_model(
        pipeline, "classical", "tfidf_svm", texts, pipeline.predict_proba(texts), None
    )
    assert graph is not None and info["max_abs_diff"] <= 1e-12


def test_a_vectorizer_setting_the_runtime_lacks_is_not_exported():
    from ladder.models import tfidf

    x, y = tiny_texts(2)
    pipeline = tfidf.build(tfidf.TfidfLogRegConfig(), (), 2).fit(x, y)
    pipeline.steps[0][1].transformer_list[1][1].norm = "l1"
    expected = pipeline.predict_proba(x)
    graph, info = export_model(pipeline, "classical", "tfidf_logreg", x, expected, None)
    assert graph is None and not info["exported"]
    assert "tfidf_logreg: the numpy TF-IDF runtime does not support" in info["reason"]
    assert "norm" in info["reason"]
    pipeline.steps[0][1].transformer_list[0][1].token_pattern = r"\w+"
    with pytest.raises(ExportError, match="tfidf_logreg: not a pipeline built by ladder"):
        export_tfidf(pipeline, "tfidf_logreg")


def test_a_vocabulary_larger_than_the_graph_is_refused(text_run, tmp_path):
    import onnx

    model = onnx.load(str(artifact(text_run, "tfidf_logreg") / "model.onnx"))
    (entry,) = [p for p in model.metadata_props if p.key == METADATA_KEY]
    metadata = json.loads(entry.value)
    metadata["parts"][0]["terms"].append("extra")  # one column more than the weights have
    idf = np.frombuffer(base64.b64decode(metadata["parts"][0]["idf"]), "<f8")
    metadata["parts"][0]["idf"] = base64.b64encode(np.append(idf, 1.0).tobytes()).decode()
    metadata["pad_id"] += 1
    entry.value = json.dumps(metadata)
    with pytest.raises(ArtifactError, match="TF-IDF vocabulary does not fit the graph"):
        OnnxPredictor(model.SerializeToString(), "classical")


def test_ladder_export_re_exports_a_tfidf_model(text_run, tmp_path):
    source = artifact(text_run, "tfidf_svm")
    manifest = read_manifest(source)
    body = {**manifest_body(manifest), "onnx": {"exported": False, "reason": "made before"}}

    def write_model(folder: Path) -> str:  # the artifact as it was without an ONNX graph
        shutil.copy2(source / manifest["model_file"], folder / manifest["model_file"])
        return manifest["model_file"]

    preprocess = json.loads((source / "preprocess.json").read_text())
    copy = write_artifact(tmp_path / "artifact", body, preprocess, write_model)
    assert ladder.load(copy).backend == "sklearn"
    assert main(["export", str(copy)]) == 0
    info = read_manifest(copy)["onnx"]
    assert info["exported"] and info["rows_checked"] > 0 and info["max_abs_diff"] <= 1e-4
    want = ladder.load(copy, backend="sklearn").predict_proba(UNICODE_TEXTS)
    got = ladder.load(copy)
    assert got.backend == "onnxruntime"
    np.testing.assert_allclose(got.predict_proba(UNICODE_TEXTS), want, rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------- regressors, boosting

REGRESSORS = [
    "decision_tree",
    "random_forest",
    "svm",
    "gradient_boosting",
    "knn",
    "mean",
    "linear_regression",
    "ridge",
    "lasso",
    "elastic_net",
    "lightgbm",
    "xgboost",
]
FEW_TREES = {
    "random_forest": {"n_estimators": 10},
    "gradient_boosting": {"max_iter": 20},
    "lightgbm": {"n_estimators": 20},
    "xgboost": {"n_estimators": 20},
}


def fitted(model_type: str, task: str, x: np.ndarray, y: np.ndarray, **params):
    """A seeded estimator of `model_type` for `task`, built through its config and fitted."""
    from ladder.models.classical import with_seed
    from ladder.registry import get_spec

    spec = get_spec(model_type)
    config = spec.config_cls.model_validate({**FEW_TREES.get(model_type, {}), **params})
    return with_seed(spec.builder(task)(config, x.shape[1:], 3), 0).fit(x, y)


@pytest.fixture(scope="module")
def friedman() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=200, random_state=0)
    return x.astype(np.float32), 100 * y  # targets up to ~2800: the tolerance is relative


@pytest.mark.parametrize("model_type", REGRESSORS)
def test_every_classical_regressor_exports_and_onnx_runtime_matches(model_type, friedman):
    x, y = friedman
    model = fitted(model_type, "regression", x, y)
    expected = model.predict(x)
    graph, info = export_model(model, "classical", model_type, x, expected, None, "regression")
    assert graph is not None, info["reason"]
    tolerance = 1e-4 * max(1.0, np.abs(expected).max())
    assert info["exported"] and info["rows_checked"] == 200
    assert 0 <= info["max_abs_diff"] <= tolerance
    got = OnnxPredictor(graph, "classical", task="regression")(x)
    assert got.shape == (200,) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("model_type", ["gradient_boosting", "lightgbm", "xgboost"])
@pytest.mark.parametrize("n_classes", [2, 3])
def test_boosted_classifiers_export_their_probabilities(model_type, n_classes):
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=150, n_features=5, n_informative=3, n_redundant=0, n_classes=n_classes
    )
    x = x.astype(np.float32)
    model = fitted(model_type, "classification", x, y)
    expected = model.predict_proba(x)
    graph, info = export_model(model, "classical", model_type, x, expected, None)
    assert graph is not None, info["reason"]
    assert info["max_abs_diff"] <= 1e-4
    assert info["opset"] == (17 if model_type == "gradient_boosting" else 15)
    got = OnnxPredictor(graph, "classical")(x)
    assert got.shape == (150, n_classes)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-4)


@pytest.mark.parametrize("model_type", ["gradient_boosting", "lightgbm", "xgboost"])
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_boosted_graphs_route_missing_values_as_the_model_does(model_type, task, friedman):
    x, y = friedman
    x = x.copy()
    x[::3, 0] = np.nan
    x[::4, 5] = np.nan
    y = (y > np.median(y)).astype(int) if task == "classification" else y
    model = fitted(model_type, task, x, y)
    expected = model.predict(x) if task == "regression" else model.predict_proba(x)
    graph, info = export_model(model, "classical", model_type, x, expected, None, task)
    assert graph is not None, info["reason"]


@pytest.mark.parametrize("model_type", ["gradient_boosting", "mean", "lightgbm", "xgboost"])
def test_export_is_deterministic(model_type, friedman):
    from ladder.export.onnx import export_classical

    model = fitted(model_type, "regression", *friedman)
    first = export_classical(model, 10, model_type, "regression")
    assert export_classical(model, 10, model_type, "regression") == first


def test_hist_gradient_boosting_thresholds_split_float32_features_exactly():
    from sklearn.ensemble import HistGradientBoostingRegressor

    # adjacent float32 values: the float64 midpoint between them rounds up to the upper one
    low = np.float32(0.1)
    high = np.nextafter(low, np.float32(1))
    x = np.repeat(np.array([[low], [high]], dtype=np.float32), 20, axis=0)
    y = np.repeat([0.0, 10.0], 20)
    model = HistGradientBoostingRegressor(max_iter=3, min_samples_leaf=5).fit(x, y)
    expected = model.predict(x)
    assert expected[0] < expected[-1]  # the split separates the two values
    graph, info = export_model(
        model, "classical", "gradient_boosting", x, expected, None, "regression"
    )
    assert graph is not None and info["max_abs_diff"] < 1e-5


def test_a_large_target_is_checked_relative_to_its_size():
    from sklearn.dummy import DummyRegressor

    x = np.zeros((4, 2), dtype=np.float32)
    model = DummyRegressor().fit(x, [1e6 + 0.3] * 4)  # float32 keeps 1e6 to within 0.06
    expected = model.predict(x)
    graph, info = export_model(model, "classical", "mean", x, expected, None, "regression")
    assert graph is not None and 1e-4 < info["max_abs_diff"] <= 1e-4 * 1e6
    graph, info = export_model(model, "classical", "mean", x, expected + 500, None, "regression")
    assert graph is None and "ONNX Runtime's predictions differ" in info["reason"]


def test_without_onnxmltools_a_boosted_model_keeps_a_reason(friedman, monkeypatch):
    model = fitted("lightgbm", "regression", *friedman)
    monkeypatch.setitem(sys.modules, "onnxmltools", None)  # import onnxmltools fails
    graph, info = export_model(
        model, "classical", "lightgbm", friedman[0], model.predict(friedman[0]), None, "regression"
    )
    assert graph is None
    assert info["reason"].startswith("lightgbm: onnxmltools is not installed")
    assert "pip install 'ladder-ml[boost]'" in info["reason"]

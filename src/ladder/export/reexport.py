"""`ladder export ARTIFACT`: (re)export an artifact's model.onnx from its own model files,
verified on synthetic rows shaped like the model's input, and swapped in atomically."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ladder.data import preprocessor_from_json
from ladder.export.artifact import manifest_body, neural_module, read_manifest, write_artifact
from ladder.export.onnx import ONNX_MODEL, ExportError, export_model
from ladder.models.classical import load_classical
from ladder.models.tfidf import sample_texts

N_ROWS = 64


def synthetic_features(manifest: dict[str, Any], n: int = N_ROWS, seed: int = 0) -> np.ndarray:
    """Preprocessed features shaped like the model's input: standard normal floats (tabular,
    images), or token ids of random lengths right-padded with the pad id (text)."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in manifest["feature_shape"])
    pad_id = manifest.get("pad_id")
    if pad_id is None:
        return rng.normal(size=(n, *shape)).astype(np.float32)
    max_length, vocab_size = shape
    ids = rng.integers(0, vocab_size, size=(n, max_length))
    ids[ids == pad_id] = (pad_id + 1) % vocab_size  # padding only at the end
    lengths = rng.integers(1, max_length + 1, size=n)
    ids[np.arange(max_length) >= lengths[:, None]] = pad_id
    return ids.astype(np.int64)


def export_artifact(directory: str | Path) -> dict[str, Any]:
    """Write (or rewrite) the artifact's model.onnx and the manifest's "onnx" entry; returns
    that entry. ExportError (a one-line user error) when the model cannot be exported."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    family, model_type = manifest["family"], manifest["model_type"]
    model, expected, features = _native(directory, manifest)
    graph, info = export_model(
        model,
        family,
        model_type,
        features,
        expected(features),
        manifest.get("pad_id"),
        task=manifest.get("task", "classification"),
    )
    if graph is None:
        raise ExportError(info["reason"])
    preprocess = json.loads((directory / "preprocess.json").read_text())
    extra = preprocessor_from_json(preprocess, directory).extra_files()
    kept = [manifest["model_file"]] + [
        name
        for name in manifest["files"]
        if name not in ("preprocess.json", "labels.json", ONNX_MODEL, manifest["model_file"])
        and name not in extra
    ]

    def write_model(folder: Path) -> list[str]:
        for name in kept:
            shutil.copy2(directory / name, folder / name)
        (folder / ONNX_MODEL).write_bytes(graph)
        return [*kept, ONNX_MODEL]

    base = manifest_body(manifest)
    base["onnx"] = {**info, "checked_on": "synthetic rows"}
    write_artifact(directory, base, preprocess, write_model, extra)
    return base["onnx"]


def _native(directory: Path, manifest: dict[str, Any]) -> tuple[Any, Any, np.ndarray]:
    """(the model object, its output function (probabilities, or regression values in the
    model's target space), synthetic features) from the artifact."""
    features = synthetic_features(manifest)
    path = directory / manifest["model_file"]
    regression = manifest.get("task") == "regression"
    if manifest["family"] == "classical":
        estimator = load_classical(directory, manifest["model_file"], manifest["model_type"])
        outputs = estimator.predict if regression else estimator.predict_proba
        if manifest["input"]["kind"] == "text":  # TF-IDF: texts of its own vocabulary
            texts = sample_texts(estimator, N_ROWS)
            return estimator, lambda _: outputs(texts), texts
        flat = features.reshape(len(features), -1)
        return estimator, lambda _: outputs(flat), flat
    import torch

    module = neural_module(path, manifest)

    def probabilities(x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(torch.from_numpy(x)).float()
            return (out[:, 0] if regression else torch.softmax(out, dim=1)).numpy()

    return module, probabilities, features

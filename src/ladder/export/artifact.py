"""The deployable artifact: write it atomically, verify it, load it, predict with it.

An artifact is a folder with `manifest.json` (what the model is and a sha256 of every file),
`preprocess.json`, `labels.json` and the model itself: `weights.safetensors` for neural models,
`model.skops` for classical ones; text models add `tokenizer.json`, pretrained ones
`pretrained_config.json` (the architecture). Loading never unpickles anything and runs no
code from it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.data import preprocessor_from_json, read_records, records_where
from ladder.data.values import Where, data_row
from ladder.errors import ArtifactError
from ladder.export.architecture import neural_architecture
from ladder.export.int8 import load_int8_module
from ladder.export.onnx import ONNX_MODEL, OnnxPredictor
from ladder.io import make_temp_dir, sha256_file
from ladder.models.classical import load_classical

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
NEURAL_WEIGHTS = "weights.safetensors"
INT8_WEIGHTS = "weights.int8.safetensors"  # a torch int8 variant (ladder.export.int8)
CLASSICAL_MODEL = "model.skops"


def _manifest_checksum(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def write_artifact(
    directory: Path,
    manifest: dict[str, Any],
    preprocess: dict[str, Any],
    write_model: Callable[[Path], str | list[str]],
    extra_files: dict[str, str] | None = None,
) -> Path:
    """Write an artifact folder atomically.

    `write_model(folder)` saves the model and returns its file name (or names, the model file
    first); `extra_files` are the preprocessor's other files (name -> text, a tokenizer.json).

    The folder is built beside `directory` and swapped in with renames, so a failure at any
    point leaves the previous artifact (if any) untouched.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = make_temp_dir(directory.parent, prefix=f".{directory.name}-")
    try:
        (staging / "preprocess.json").write_text(json.dumps(preprocess, indent=1))
        (staging / "labels.json").write_text(json.dumps(manifest["labels"]))
        for name, text in (extra_files or {}).items():
            (staging / name).write_text(text, encoding="utf-8")
        written = write_model(staging)
        model_files = [written] if isinstance(written, str) else list(written)
        model_file = model_files[0]
        files = ["preprocess.json", "labels.json", *(extra_files or {}), *model_files]
        full = {
            "format_version": FORMAT_VERSION,
            **manifest,
            "model_file": model_file,
            "files": {name: sha256_file(staging / name) for name in files},
        }
        full["checksum"] = _manifest_checksum(full)
        (staging / MANIFEST).write_text(json.dumps(full, indent=2))
        _swap_in(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def manifest_body(manifest: dict[str, Any]) -> dict[str, Any]:
    """A read manifest without what `write_artifact` writes itself (format, files, checksum),
    ready to write a new version of the artifact with."""
    written = ("format_version", "model_file", "files", "checksum")
    return {k: v for k, v in manifest.items() if k not in written}


def _swap_in(staging: Path, directory: Path) -> None:
    old = directory.with_name(f".{directory.name}-old-{uuid.uuid4().hex}")
    if directory.exists():
        directory.rename(old)
    staging.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The verified manifest of an artifact; ArtifactError if incomplete or tampered with."""
    directory = Path(directory)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such artifact folder")
    if not path.is_file():
        raise ArtifactError(f"{directory}: not an artifact (no {MANIFEST})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: manifest is not valid JSON ({exc})") from exc
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(f"{path}: unsupported artifact format (expected {FORMAT_VERSION})")
    if manifest.get("checksum") != _manifest_checksum(manifest):
        raise ArtifactError(f"{path}: manifest checksum mismatch (the manifest was modified)")
    for name, expected in manifest["files"].items():
        file = directory / name
        if not file.is_file():
            raise ArtifactError(f"{directory}: incomplete artifact, {name} is missing")
        if sha256_file(file) != expected:
            raise ArtifactError(f"{file}: checksum mismatch (the file was modified or corrupted)")
    return manifest


@dataclass
class LoadedModel:
    """A saved model ready to predict on raw records (rows, files, image arrays)."""

    manifest: dict[str, Any]
    preprocessor: Any
    predict_features: Callable[[np.ndarray], np.ndarray]
    backend: str = "torch"

    @property
    def labels(self) -> list[Any]:
        """Class values, in the order of the probability columns ([] for regression)."""
        return list(self.manifest["labels"])

    @property
    def task(self) -> str:
        """classification or regression."""
        return str(self.manifest.get("task", "classification"))

    @property
    def input_spec(self) -> dict[str, Any]:
        """What the model takes: tabular columns and dtypes, or the image shape."""
        return dict(self.manifest["input"])

    def read(self, records: Any) -> tuple[Any, list[str] | None]:
        """Raw inputs (and their identifiers, for files) from a path, DataFrame, dicts or arrays,
        refused where the model cannot take them (`check`)."""
        raw, ids = read_records(records, self.input_spec)
        return self.check(raw, records_where(records, self.input_spec)), ids

    def check(self, raw: Any, where: Where | None = None) -> Any:
        """Raw inputs as the model takes them; DataError naming the column and row of a missing
        value in a feature that had none in training, or of a non-finite number.

        Args:
            where: names a value from its column and 0-based row in messages; None:
                "column 'age', row 4".
        """
        return self.preprocessor.check_input(raw, where or data_row)

    def predict_proba(self, records: Any) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns in `labels` order."""
        raw, _ = self.read(records)
        return self.predict_proba_raw(raw)

    def predict_proba_raw(self, raw: Any) -> np.ndarray:
        """Class probabilities for inputs already read (a DataFrame or an image array)."""
        features = self.preprocessor.transform(raw)
        return self.predict_features(features)

    def predict_outputs_raw(self, raw: Any) -> np.ndarray:
        """What the task predicts for inputs already read: class probabilities (n, n_classes),
        or values (n,) in the target's units (regression)."""
        if self.task != "regression":
            return self.predict_proba_raw(raw)
        outputs = self.predict_features(self.preprocessor.transform(raw))
        return _target_inverse(self.manifest.get("target_scaling"), outputs)

    def predict(self, records: Any) -> np.ndarray:
        """The most probable class value of each record, or its predicted value (regression)."""
        raw, _ = self.read(records)
        outputs = self.predict_outputs_raw(raw)
        if self.task == "regression":
            return outputs
        return np.asarray(self.labels, dtype=object)[outputs.argmax(axis=1)]

    def predict_interval(self, records: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Regression with `evaluate.intervals`: (prediction, lower, upper) of each record,
        the split-conformal interval calibrated on the validation split."""
        interval = self.manifest.get("interval")
        if self.task != "regression" or not interval:
            raise ArtifactError(
                f"{self.manifest.get('name')}: no prediction intervals (train a regression "
                "model with evaluate.intervals set)"
            )
        raw, _ = self.read(records)
        values = self.predict_outputs_raw(raw)
        radius = float(interval["radius"])
        return values, values - radius, values + radius


def _target_inverse(scaling: dict[str, Any] | None, outputs: np.ndarray) -> np.ndarray:
    """Model outputs back in the target's units: undo the standardisation and log1p that the
    manifest's `target_scaling` records (none recorded: the outputs as they are)."""
    scaling = scaling or {}
    values = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)[:, 0]
    values = values * float(scaling.get("std", 1.0)) + float(scaling.get("mean", 0.0))
    return np.expm1(values) if scaling.get("log1p") else values


def load(
    directory: str | Path,
    backend: str | None = None,
    threads: int | None = None,
    arena: bool = True,
) -> LoadedModel:
    """Load a verified artifact to predict with `backend`.

    Backends: "onnxruntime" (model.onnx; imports neither torch nor scikit-learn), "torch"
    (neural models' weights) or "sklearn" (classical models' skops file). The default is
    onnxruntime where the artifact has a model.onnx, else the model's own framework.
    `threads`: ONNX Runtime's intra-op threads (idle ones sleep); None: its defaults.
    `arena`: ONNX Runtime's CPU memory arena (a server turns it off: memory goes back).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    preprocess = json.loads((directory / "preprocess.json").read_text())
    preprocessor = preprocessor_from_json(preprocess, directory)
    family = manifest["family"]
    native = "sklearn" if family == "classical" else "torch"
    has_onnx = ONNX_MODEL in manifest["files"]
    backend = backend or ("onnxruntime" if has_onnx else native)
    if backend not in ("onnxruntime", native):
        raise ArtifactError(
            f"backend {backend!r}: a {family} model predicts with onnxruntime or {native}"
        )
    if manifest["model_file"] == ONNX_MODEL and backend != "onnxruntime":
        raise ArtifactError(f"{directory}: a compressed variant predicts with onnxruntime only")
    if manifest["model_file"] == INT8_WEIGHTS and backend != "torch":
        raise ArtifactError(
            f"{directory}: a torch int8 variant predicts with torch only (it has no {ONNX_MODEL})"
        )
    if backend == "onnxruntime":
        if not has_onnx:
            why = (manifest.get("onnx") or {}).get("reason", "it was not exported")
            raise ArtifactError(f"{directory}: no {ONNX_MODEL} ({why}); use --backend {native}")
        predict: Callable[[np.ndarray], np.ndarray] = OnnxPredictor(
            directory / ONNX_MODEL,
            family,
            manifest.get("pad_id"),
            threads,
            arena,
            task=manifest.get("task", "classification"),
        )
    elif family == "classical":
        predict = _classical_predictor(directory / manifest["model_file"], manifest["model_type"])
    else:
        predict = _neural_predictor(directory / manifest["model_file"], manifest)
    return LoadedModel(manifest, preprocessor, predict, backend)


def _classical_predictor(path: Path, model_type: str) -> Callable[[np.ndarray], np.ndarray]:
    estimator = load_classical(path.parent, path.name, model_type)
    if not hasattr(estimator, "predict_proba"):  # a regressor
        return lambda x: estimator.predict(x if x.ndim == 1 else x.reshape(len(x), -1))
    return lambda x: estimator.predict_proba(x if x.ndim == 1 else x.reshape(len(x), -1))


def neural_module(path: Path, manifest: dict[str, Any]) -> Any:
    """The artifact's torch module (eval mode) with its weights from `path`; a torch int8
    variant's module is rebuilt with its int8 weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if manifest["model_file"] == INT8_WEIGHTS:
        return load_int8_module(path, manifest)
    module = neural_architecture(path.parent, manifest)
    try:
        module.load_state_dict(load_file(path))
    except (SafetensorError, RuntimeError) as exc:
        raise ArtifactError(
            f"{path}: weights do not fit the {manifest['model_type']} model ({exc})"
        ) from exc
    return module.eval()


def _neural_predictor(path: Path, manifest: dict[str, Any]) -> Callable[[np.ndarray], np.ndarray]:
    module = neural_module(path, manifest)
    regression = manifest.get("task") == "regression"
    n_classes = 1 if regression else len(manifest["labels"])
    pad_id = manifest.get("pad_id")

    def predict(features: np.ndarray) -> np.ndarray:
        if pad_id is None:
            parts = np.array_split(features, max(1, len(features) // 1024))
            return _outputs(module, parts, regression).astype(np.float64)
        # token ids: shortest texts first, each chunk without its all-padding columns
        order = np.argsort((features != pad_id).sum(axis=1), kind="stable")
        parts = [_trim(features[rows], pad_id) for rows in _chunks(order, 256)]
        out = np.empty((len(features), n_classes))
        out[order] = _outputs(module, parts, regression).reshape(len(features), n_classes)
        return out[:, 0] if regression else out

    return predict


def _outputs(module: Any, parts: list[np.ndarray], regression: bool = False) -> np.ndarray:
    """Class probabilities of the parts, or (regression) the one output of each row."""
    import torch

    with torch.no_grad():
        chunks = []
        for part in parts:
            out = module(torch.from_numpy(np.ascontiguousarray(part))).float()
            chunks.append(out[:, 0] if regression else torch.softmax(out, dim=1))
    return torch.cat(chunks).numpy()


def _chunks(rows: np.ndarray, size: int) -> list[np.ndarray]:
    return [rows[i : i + size] for i in range(0, len(rows), size)] or [rows]


def _trim(ids: np.ndarray, pad_id: int) -> np.ndarray:
    """Token ids without their all-padding columns on the right (at least one column)."""
    longest = int((ids != pad_id).sum(axis=1).max(initial=1))
    return ids[:, :longest]

"""One rung of the ladder: prepared data -> fitted model -> test metrics and plots -> a saved,
exported artifact in the run folder.

Steps: fit preprocessing on the training split -> train -> evaluate on the test split -> write
metrics, history, plots and the artifact into the model's folder.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ladder import __version__
from ladder.config import Config, ModelEntry
from ladder.data import fit_preprocessor
from ladder.data.target import TargetScaling
from ladder.errors import ConfigError, LadderError, TrainingInterrupted
from ladder.evaluate.regression import conformal_radius
from ladder.export.artifact import write_artifact
from ladder.export.onnx import ONNX_MODEL, export_model
from ladder.hub import resolve_pretrained
from ladder.io import atomic_write_text
from ladder.models.spec import ModelSpec
from ladder.registry import MODEL_TYPES, get_spec
from ladder.run_folder import model_dir as model_folder
from ladder.runner.cache import config_hash
from ladder.runner.fit import FittedClassical, FittedNeural, fit_classical, fit_neural
from ladder.runner.prepare import PreparedData
from ladder.runner.ranking import remove_variants
from ladder.tasks import Task, get_task


@dataclass
class TrainResult:
    """What `train_model` produced: test metrics and where everything was written."""

    model: str
    metrics: dict[str, Any]
    run_dir: Path
    model_dir: Path
    artifact: Path
    train_seconds: float
    device: str
    history: list[dict[str, Any]] = field(default_factory=list)


def resolve_device(requested: str) -> str:
    """`auto` picks CUDA when present; asking for CUDA without one is a user error."""
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError(["device: 'cuda' was requested but no CUDA device is available"])
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def rung_device(requested: str, spec: ModelSpec) -> str:
    """The device a rung of `spec` trains on: `resolve_device`'s for a PyTorch network, the CPU
    for a classical model, and for a NumPy network the CPU unless a device is named (which
    `check_numpy_support` then refuses, naming the PyTorch rung)."""
    if spec.pytorch_twin is not None:
        return "cpu" if requested == "auto" else requested
    return resolve_device(requested) if spec.trains_with_trainer else "cpu"


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so that CPU runs repeat exactly."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train_entry(
    config: Config,
    entry: ModelEntry,
    data: PreparedData,
    run_dir: Path,
    resume: bool = False,
    main: bool = True,
    loss: Any = None,
    compression: dict[str, Any] | None = None,
    init: Any = None,
) -> TrainResult | None:
    """Train one validated model entry on prepared data and write its results under run_dir.

    `main` is False on torchrun workers other than rank 0: they train, write nothing and
    return None. A neural model trains with `loss` when given (`(logits, labels, rows) ->
    loss`, rows indexing the training split; e.g. distillation) and `init` (`module -> None`,
    applied to the freshly built module) when given; `compression` goes into the artifact's
    manifest (a compressed variant's description).
    """
    spec = get_spec(entry.type)
    cache_key = config_hash(config, entry)
    entry = resolve_model_path(config, entry)
    model_dir = model_folder(run_dir, entry.name)
    splits = data.splits
    if resume:
        _check_resumable(entry, spec.trains_with_trainer)
    fit = fit_rung(config, entry, data, model_dir, resume=resume, loss=loss, init=init)
    if not main:
        return None
    fitted, preprocessor, task, history = fit.fitted, fit.preprocessor, fit.task, fit.history
    x_test, x_val, y_val, scaling = fit.x_test, fit.x_val, fit.y_val, fit.fitted.scaling
    train_seconds, device = fit.train_seconds, fit.device
    outputs = task.predict(fitted, x_test)
    radius = None
    if config.evaluate.intervals is not None and x_val is not None and y_val is not None:
        radius = conformal_radius(y_val, task.predict(fitted, x_val), config.evaluate.intervals)
    metrics = task.evaluate(splits.test.y, outputs, data.labels, model_dir, history, radius)
    metrics["train_seconds"] = round(train_seconds, 3)
    metrics["params"] = fitted.n_params()

    manifest = _manifest(config, entry, spec.family, preprocessor, data.labels, metrics, data.info)
    if scaling is not None:
        manifest["target_scaling"] = scaling.to_json()
    if radius is not None:
        manifest["interval"] = {"level": config.evaluate.intervals, "radius": radius}
    if compression is not None:
        manifest["compression"] = compression
    artifact = model_dir / "artifact"

    pad_id = getattr(preprocessor, "pad_id", None)
    graph, manifest["onnx"] = export_model(
        fitted.model,
        spec.family,
        entry.type,
        x_test,
        fitted.model_outputs(x_test),
        pad_id,
        task=task.name,
    )

    def write_model(folder: Path) -> list[str]:
        saved = fitted.save(folder)
        files = [saved] if isinstance(saved, str) else list(saved)
        if graph is not None:
            (folder / ONNX_MODEL).write_bytes(graph)
            files.append(ONNX_MODEL)
        return files

    write_artifact(
        artifact, manifest, preprocessor.to_json(), write_model, preprocessor.extra_files()
    )
    # written last, with the config hash: marks the rung finished (cached) whichever command
    # trained it; the variants compressed from the weights it replaced are stale
    metrics["config_hash"] = cache_key
    atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2))
    remove_variants(run_dir, entry.name)
    return TrainResult(
        entry.name, metrics, run_dir, model_dir, artifact, train_seconds, device, history
    )


@dataclass
class RungFit:
    """A model fitted on the training split, with what evaluating it needs: its fitted
    preprocessing and the preprocessed test and validation features."""

    fitted: FittedClassical | FittedNeural
    preprocessor: Any
    task: Task
    x_test: np.ndarray
    x_val: np.ndarray | None
    y_val: np.ndarray | None
    history: list[dict[str, Any]]
    train_seconds: float
    device: str


def fit_rung(
    config: Config,
    entry: ModelEntry,
    data: PreparedData,
    model_dir: Path,
    resume: bool = False,
    loss: Any = None,
    init: Any = None,
    checkpoints: bool = True,
) -> RungFit:
    """Fit preprocessing and the model of a (path-resolved) entry on the training split; a
    network's history and checkpoints (unless not `checkpoints`) go into `model_dir`. Nothing
    is evaluated or exported."""
    spec = get_spec(entry.type)
    splits = data.splits
    if splits.train.kind not in spec.inputs:
        hint = _text_hint() if splits.train.kind == "text" else ""
        raise LadderError(
            f"models.{entry.name}: type {entry.type} needs {' or '.join(spec.inputs)} data, "
            f"but {data.source} is {splits.train.kind} data{hint}"
        )
    device = rung_device(config.device, spec)
    seed_everything(config.seed)
    preprocessor = _fit_preprocessor(config, entry, spec.trains_with_trainer, splits.train)
    x_train = preprocessor.transform(splits.train.X)
    x_test = preprocessor.transform(splits.test.X)
    x_val = preprocessor.transform(splits.val.X) if splits.val is not None else None
    task = get_task(data.task)
    scaling = task_scaling(task, config, spec.trains_with_trainer, splits.train.y)
    y_train = scaling.forward(splits.train.y) if scaling else splits.train.y
    y_val = splits.val.y if splits.val is not None else None
    y_val_fit = scaling.forward(y_val) if scaling and y_val is not None else y_val
    n_outputs = task.n_outputs(data.labels)

    started = time.perf_counter()
    if not spec.trains_with_trainer:
        fitted: FittedClassical | FittedNeural = fit_classical(
            entry, x_train, y_train, n_outputs, config, task
        )
        history: list[dict[str, Any]] = []
    else:
        try:
            fitted, history = fit_neural(
                entry,
                preprocessor.output_shape,
                n_outputs,
                config,
                device,
                model_dir,
                (x_train, y_train),
                (x_val, y_val_fit),
                resume=resume,
                pad_id=getattr(preprocessor, "pad_id", None),
                loss=loss,
                init=init,
                task=task,
                checkpoints=checkpoints,
            )
        except TrainingInterrupted as stopped:
            stopped.model = entry.name
            raise
    fitted.scaling = scaling
    seconds = time.perf_counter() - started
    return RungFit(fitted, preprocessor, task, x_test, x_val, y_val, history, seconds, device)


def _text_hint() -> str:
    """The registered types that take text."""
    names = [name for name in MODEL_TYPES if "text" in MODEL_TYPES[name].inputs]
    return f" (text models: {', '.join(names)})"


def resolve_model_path(config: Config, entry: ModelEntry) -> ModelEntry:
    """A pretrained model's `path` relative to the config's folder, when it exists there."""
    path = getattr(entry.params, "path", None)
    if not isinstance(path, str) or Path(path).is_absolute():
        return entry
    local = config.base_dir / path
    if not local.exists():
        return entry  # a hub id, or a path relative to the working directory
    params = entry.params.model_copy(update={"path": str(local)})
    text = entry.text
    if text.tokenizer_path == path:
        text = text.model_copy(update={"tokenizer_path": str(local)})
    return entry.model_copy(update={"params": params, "text": text})


def _fit_preprocessor(config: Config, entry: ModelEntry, network: bool, train: Any) -> Any:
    """The entry's preprocessor, fitted on the training split: text models get raw strings
    (classical) or token ids from the entry's tokenizer (neural)."""
    if train.kind != "text":
        return fit_preprocessor(train, getattr(entry.params, "image_size", None))
    if not network:
        return fit_preprocessor(train)
    folder = None
    if entry.text.tokenizer == "pretrained":
        if entry.text.tokenizer_path is None:
            raise ConfigError(
                [
                    f"models.{entry.name}.text.tokenizer_path: required with "
                    "tokenizer: pretrained (a model folder or hub id)"
                ]
            )
        path = entry.text.tokenizer_path
        local = config.base_dir / path
        folder = resolve_pretrained(str(local) if local.exists() else path)
    return fit_preprocessor(train, text=entry.text, pretrained_folder=folder)


def _check_resumable(entry: ModelEntry, network: bool) -> None:
    """Classical models have no checkpoints; the trainer checks a neural model's folder."""
    if not network:
        raise LadderError(
            f"--resume: {entry.name} is a classical model ({entry.type}) and has no checkpoints; "
            "train it without --resume"
        )


def evaluate_predictions(
    y_true: np.ndarray,
    outputs: np.ndarray,
    labels: list[Any],
    model_dir: Path,
    history: list[dict[str, Any]] | None = None,
    task: str = "classification",
    radius: float | None = None,
) -> dict[str, Any]:
    """Test metrics, the task's plots and test_predictions.csv of a model's test outputs."""
    return get_task(task).evaluate(y_true, outputs, labels, model_dir, history, radius)


def task_scaling(task: Task, config: Config, network: bool, y: np.ndarray) -> TargetScaling | None:
    """How a regression target is scaled for training (log1p when asked; standardised for
    neural models); None for classification."""
    if task.name != "regression":
        return None
    log1p = config.data.target_transform == "log1p"  # prepare() checked the targets
    return TargetScaling.fit(y, log1p=log1p, standardise=network)


def _manifest(
    config: Config,
    entry: ModelEntry,
    family: str,
    preprocessor: Any,
    labels: list[Any],
    metrics: dict[str, Any],
    data_info: dict[str, Any],
) -> dict[str, Any]:
    headline = get_task(config.data.task).headline
    return {
        "name": entry.name,
        "task": config.data.task,
        "model_type": entry.type,
        "family": family,
        "model_config": entry.params.model_dump(mode="json"),
        "input": preprocessor.input_spec(),
        "feature_shape": list(preprocessor.output_shape),
        "target": config.data.target,
        "read_options": {
            "columns": config.data.columns,
            "na_values": config.data.na_values,
            "drop": config.data.drop,
            "image_size": config.data.image_size,
            "channels": config.data.channels,
            "text": config.data.text,
            "image": config.data.image,
            "text_files": config.data.text_files,
            "format": config.data.format,
        },
        "pad_id": getattr(preprocessor, "pad_id", None),
        "labels": labels,
        "metrics": {k: metrics.get(k) for k in headline},
        "data_fingerprint": data_info["sha256"],
        "ladder_version": __version__,
    }

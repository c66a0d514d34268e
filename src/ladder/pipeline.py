"""`train_model`: one rung of the config, from data to an evaluated, saved model.

Steps: load and split the data (seeded) -> fit preprocessing on the training split -> train ->
evaluate on the test split -> write metrics, history, plots and the artifact into the run folder.
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
from ladder.config import Config, ModelEntry, dump_config, load_config
from ladder.errors import ConfigError, LadderError
from ladder.io import atomic_write_text


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


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch so that CPU runs repeat exactly."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    config_path: str | Path,
    model: str,
    out: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    resume: bool = False,
) -> TrainResult | None:
    """Load a config file and train one of its models (the library form of `ladder train`)."""
    config = load_config(config_path, overrides)
    return train_model(config, model, out, resume=resume)


def train_model(
    config: Config, name: str, out: str | Path | None = None, resume: bool = False
) -> TrainResult | None:
    """Train, evaluate and save the model called `name`; returns its metrics and paths.

    With `resume`, training continues from the model's last checkpoint. Under torchrun every
    worker trains; rank 0 alone writes files and gets the result, the others get None.
    """
    from ladder.data import describe_data, fit_preprocessor, load_dataset, split_dataset
    from ladder.registry import get_spec

    entry = config.model(name)
    spec = get_spec(entry.type)
    run_dir = Path(out) if out is not None else Path("runs") / config.name
    model_dir = run_dir / "models" / name
    if resume:
        _check_resumable(entry, spec.family)

    data_cfg = config.data.model_copy(update={"source": config.resolve_path(config.data.source)})
    dataset = load_dataset(data_cfg)
    test = (
        load_dataset(data_cfg, config.resolve_path(data_cfg.test_source))
        if data_cfg.test_source
        else None
    )
    splits = split_dataset(dataset, data_cfg.split, config.seed, test=test)
    if spec.needs_image and dataset.kind != "image":
        raise LadderError(
            f"models.{name}: type {entry.type} needs image data, "
            f"but {data_cfg.source} is {dataset.kind}"
        )

    device = "cpu" if spec.family == "classical" else resolve_device(config.device)
    distributed = spec.family == "neural" and _join_workers(device)
    try:
        main = not distributed or _is_main()
        data_info = describe_data(splits, data_cfg.source)
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(run_dir / "config.yaml", dump_config(config, __version__))
            atomic_write_text(run_dir / "data.json", json.dumps(data_info, indent=2))

        seed_everything(config.seed)
        preprocessor = fit_preprocessor(splits.train, getattr(entry.params, "image_size", None))
        x_train = preprocessor.transform(splits.train.X)
        x_test = preprocessor.transform(splits.test.X)
        x_val = preprocessor.transform(splits.val.X) if splits.val is not None else None
        y_val = splits.val.y if splits.val is not None else None
        n_classes = len(dataset.labels)

        started = time.perf_counter()
        if spec.family == "classical":
            from ladder.fit import fit_classical

            fitted = fit_classical(entry, x_train, splits.train.y, n_classes, config)
            history: list[dict[str, Any]] = []
        else:
            from ladder.fit import fit_neural

            fitted, history = fit_neural(
                entry,
                preprocessor.output_shape,
                n_classes,
                config,
                device,
                model_dir,
                (x_train, splits.train.y),
                (x_val, y_val),
                resume=resume,
            )
        train_seconds = time.perf_counter() - started
        if not main:
            return None

        y_prob = fitted.predict_proba(x_test)
        metrics = _evaluate(splits.test.y, y_prob, dataset.labels, history, model_dir)
        metrics["train_seconds"] = round(train_seconds, 3)
        atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2))

        manifest = _manifest(
            config, entry, spec.family, preprocessor, dataset.labels, metrics, data_info
        )
        artifact = model_dir / "artifact"
        from ladder.export.artifact import write_artifact

        write_artifact(artifact, manifest, preprocessor.to_json(), fitted.save)
        return TrainResult(
            name, metrics, run_dir, model_dir, artifact, train_seconds, device, history
        )
    finally:
        if distributed:
            from ladder.train.distributed import cleanup

            cleanup()


def _check_resumable(entry: ModelEntry, family: str) -> None:
    """Classical models have no checkpoints; the trainer checks a neural model's folder."""
    if family == "classical":
        raise LadderError(
            f"--resume: {entry.name} is a classical model ({entry.type}) and has no checkpoints; "
            "train it without --resume"
        )


def _join_workers(device: str) -> bool:
    """Join the torchrun process group when this process is one of several workers."""
    from ladder.train.distributed import init_from_env

    return init_from_env(device)


def _is_main() -> bool:
    from ladder.train.distributed import is_main

    return is_main()


def _evaluate(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    labels: list[Any],
    history: list[dict[str, Any]],
    model_dir: Path,
) -> dict[str, Any]:
    """Test metrics, and the learning-curve, confusion-matrix and ROC plots."""
    from ladder.evaluate import classification_metrics
    from ladder.evaluate.plots import plot_confusion_matrix, plot_learning_curves, plot_roc

    metrics = classification_metrics(y_true, y_prob, labels)
    plots = model_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    if history:
        plot_learning_curves(history, plots / "learning_curve.png")
    plot_confusion_matrix(
        np.asarray(metrics["confusion_matrix"]), labels, plots / "confusion_matrix.png"
    )
    plot_roc(y_true, y_prob, labels, plots / "roc.png")
    return metrics


def _manifest(
    config: Config,
    entry: ModelEntry,
    family: str,
    preprocessor: Any,
    labels: list[Any],
    metrics: dict[str, Any],
    data_info: dict[str, Any],
) -> dict[str, Any]:
    headline = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc", "log_loss")
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
        },
        "labels": labels,
        "metrics": {k: metrics[k] for k in headline},
        "data_fingerprint": data_info["sha256"],
        "ladder_version": __version__,
    }

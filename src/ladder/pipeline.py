"""`train_model`: one rung of the config, from data to an evaluated, saved model.

Steps: load and split the data (seeded) -> fit preprocessing on the training split -> train ->
evaluate on the test split -> write metrics, history, plots and the artifact into the run folder.
"""

from __future__ import annotations

import json
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ladder import __version__
from ladder.cache import cached_status, config_hash, refuse_other_data
from ladder.config import Config, ModelEntry, dump_config, load_config
from ladder.console import RungProgress
from ladder.errors import ConfigError, LadderError, TrainingInterrupted
from ladder.io import atomic_write_text
from ladder.ranking import RunResult, leaderboard, remove_variants, write_leaderboard
from ladder.run_folder import locked
from ladder.run_folder import model_dir as model_folder


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
    wait: bool = False,
) -> TrainResult | None:
    """Load a config file and train one of its models (the library form of `ladder train`)."""
    config = load_config(config_path, overrides)
    return train_model(config, model, out, resume=resume, wait=wait)


@dataclass
class PreparedData:
    """The data of a run, loaded and split once, shared by every model."""

    splits: Any
    labels: list[Any]
    source: str
    info: dict[str, Any]


def prepare_data(config: Config) -> PreparedData:
    """Load the config's data (and test_source), split it (seeded) and describe it."""
    from ladder.data import describe_data, load_dataset, split_dataset

    data_cfg = config.data.model_copy(update={"source": config.resolve_path(config.data.source)})
    dataset = load_dataset(data_cfg)
    test = (
        load_dataset(data_cfg, config.resolve_path(data_cfg.test_source))
        if data_cfg.test_source
        else None
    )
    splits = split_dataset(dataset, data_cfg.split, config.seed, test=test)
    info = describe_data(splits, data_cfg.source)
    if test is not None:
        info["dropped_non_finite"] += test.dropped_non_finite
    return PreparedData(splits, list(dataset.labels), data_cfg.source, info)


def write_run_files(config: Config, run_dir: Path, data: PreparedData) -> None:
    """The run folder's config.yaml (resolved, with ladder's version) and data.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", dump_config(config, __version__))
    atomic_write_text(run_dir / "data.json", json.dumps(data.info, indent=2))


def train_model(
    config: Config,
    name: str,
    out: str | Path | None = None,
    resume: bool = False,
    wait: bool = False,
) -> TrainResult | None:
    """Train, evaluate and save the model called `name`; returns its metrics and paths.

    With `resume`, training continues from the model's last checkpoint. Under torchrun every
    worker trains; rank 0 alone writes files and gets the result, the others get None. The
    run folder is locked meanwhile (by the launcher under torchrun); `wait`: for another
    process that holds it.
    """
    from ladder.registry import get_spec
    from ladder.train import distributed

    entry = config.model(name)
    run_dir = Path(out) if out is not None else Path("runs") / config.name
    data = prepare_data(config)
    lock = nullcontext() if distributed.launched() else locked(run_dir, wait)
    with lock:
        if get_spec(entry.type).family == "classical":
            write_run_files(config, run_dir, data)
            return train_entry(config, entry, data, run_dir, resume=resume)
        return _train_neural(config, entry, data, run_dir, resume)


def _train_neural(
    config: Config, entry: ModelEntry, data: PreparedData, run_dir: Path, resume: bool
) -> TrainResult | None:
    """Train a neural entry, in this process or as one of torchrun's workers."""
    from ladder.train import distributed  # torchrun workers join the process group here

    joined = distributed.init_from_env(resolve_device(config.device))
    try:
        main = not joined or distributed.is_main()
        if main:
            write_run_files(config, run_dir, data)
        return train_entry(config, entry, data, run_dir, resume=resume, main=main)
    finally:
        if joined:
            distributed.cleanup()


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
    from ladder.registry import get_spec

    spec = get_spec(entry.type)
    cache_key = config_hash(config, entry)
    entry = _resolve_model_path(config, entry)
    model_dir = model_folder(run_dir, entry.name)
    splits = data.splits
    if resume:
        _check_resumable(entry, spec.family)
    if splits.train.kind not in spec.inputs:
        hint = _TEXT_HINT if splits.train.kind == "text" else ""
        raise LadderError(
            f"models.{entry.name}: type {entry.type} needs {' or '.join(spec.inputs)} data, "
            f"but {data.source} is {splits.train.kind} data{hint}"
        )

    device = "cpu" if spec.family == "classical" else resolve_device(config.device)
    seed_everything(config.seed)
    preprocessor = _fit_preprocessor(config, entry, spec.family, splits.train)
    x_train = preprocessor.transform(splits.train.X)
    x_test = preprocessor.transform(splits.test.X)
    x_val = preprocessor.transform(splits.val.X) if splits.val is not None else None
    y_val = splits.val.y if splits.val is not None else None
    n_classes = len(data.labels)

    started = time.perf_counter()
    if spec.family == "classical":
        from ladder.fit import fit_classical

        fitted = fit_classical(entry, x_train, splits.train.y, n_classes, config)
        history: list[dict[str, Any]] = []
    else:
        from ladder.fit import fit_neural

        try:
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
                pad_id=getattr(preprocessor, "pad_id", None),
                loss=loss,
                init=init,
            )
        except TrainingInterrupted as stopped:
            stopped.model = entry.name
            raise
    train_seconds = time.perf_counter() - started
    if not main:
        return None

    y_prob = fitted.predict_proba(x_test)
    metrics = evaluate_predictions(splits.test.y, y_prob, data.labels, model_dir, history)
    metrics["train_seconds"] = round(train_seconds, 3)
    metrics["params"] = fitted.n_params()

    manifest = _manifest(config, entry, spec.family, preprocessor, data.labels, metrics, data.info)
    if compression is not None:
        manifest["compression"] = compression
    artifact = model_dir / "artifact"
    from ladder.export.artifact import write_artifact
    from ladder.export.onnx import ONNX_MODEL, export_model

    pad_id = getattr(preprocessor, "pad_id", None)
    model = fitted.estimator if spec.family == "classical" else fitted.trainer.module
    graph, manifest["onnx"] = export_model(model, spec.family, entry.type, x_test, y_prob, pad_id)

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


_TEXT_HINT = " (text models: tfidf_logreg, tfidf_svm, textcnn, rnn, transformer, pretrained)"


def _resolve_model_path(config: Config, entry: ModelEntry) -> ModelEntry:
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


def _fit_preprocessor(config: Config, entry: ModelEntry, family: str, train: Any) -> Any:
    """The entry's preprocessor, fitted on the training split: text models get raw strings
    (classical) or token ids from the entry's tokenizer (neural)."""
    from ladder.data import fit_preprocessor

    if train.kind != "text":
        return fit_preprocessor(train, getattr(entry.params, "image_size", None))
    if family == "classical":
        return fit_preprocessor(train)
    folder = None
    if entry.text.tokenizer == "pretrained":
        from ladder.hub import resolve_pretrained

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


def _write_test_predictions(model_dir: Path, y_true: np.ndarray, y_prob: np.ndarray) -> None:
    """Class ids of the test rows and of the predictions (for bootstrap CIs and McNemar tests)."""
    lines = [
        "y_true,y_pred",
        *(f"{t},{p}" for t, p in zip(y_true, y_prob.argmax(axis=1), strict=True)),
    ]
    atomic_write_text(model_dir / "test_predictions.csv", "\n".join(lines) + "\n")


def _check_resumable(entry: ModelEntry, family: str) -> None:
    """Classical models have no checkpoints; the trainer checks a neural model's folder."""
    if family == "classical":
        raise LadderError(
            f"--resume: {entry.name} is a classical model ({entry.type}) and has no checkpoints; "
            "train it without --resume"
        )


def evaluate_predictions(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    labels: list[Any],
    model_dir: Path,
    history: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Test metrics; the learning-curve, confusion-matrix and ROC plots; test_predictions.csv."""
    _write_test_predictions(model_dir, y_true, y_prob)
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
            "text": config.data.text,
            "text_files": config.data.text_files,
            "format": config.data.format,
        },
        "pad_id": getattr(preprocessor, "pad_id", None),
        "labels": labels,
        "metrics": {k: metrics[k] for k in headline},
        "data_fingerprint": data_info["sha256"],
        "ladder_version": __version__,
    }


# ----------------------------------------------------------------------------- the whole ladder


def run(
    config_path: str | Path,
    out: str | Path | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wait: bool = False,
) -> RunResult:
    """Train and compare every model of a config on one split (the library form of `ladder run`)."""
    return run_config(load_config(config_path, overrides), out, only, force, wait)


def run_config(
    config: Config,
    out: str | Path | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wait: bool = False,
) -> RunResult:
    """Train (or reuse) each selected model, then write the leaderboard and the report; the
    run folder is locked meanwhile (`wait`: for another process that holds it)."""
    names = [entry["name"] for entry in config.models]
    unknown = [name for name in only or [] if name not in names]
    if unknown:
        raise ConfigError(
            [f"--only {', '.join(unknown)}: no such model (models: {', '.join(names)})"]
        )
    selected = [name for name in names if not only or name in only]
    entries = {name: config.model(name) for name in names}
    run_dir = Path(out) if out is not None else Path("runs") / config.name

    data = prepare_data(config)
    with locked(run_dir, wait):
        return _run_locked(config, entries, selected, data, run_dir, force)


def _run_locked(
    config: Config,
    entries: dict[str, ModelEntry],
    selected: list[str],
    data: PreparedData,
    run_dir: Path,
    force: bool,
) -> RunResult:
    """The body of `run_config`, with the run folder locked."""
    refuse_other_data(run_dir, config, data, force)
    write_run_files(config, run_dir, data)
    if config.evaluate.cv:
        from ladder.crossval import folds, summarize

        boards, status = [], {}
        for k, fold in enumerate(folds(config), start=1):
            fold_dir = run_dir / "folds" / f"fold{k}"
            write_run_files(config, fold_dir, fold)
            fold_status = _train_rungs(
                config, entries, selected, fold, fold_dir, force, f"fold {k}"
            )
            boards.append(leaderboard(config, entries, fold_status, fold, fold_dir))
            status.update({n: s for n, s in fold_status.items() if n not in status or s != "ok"})
        board = summarize(boards, run_dir, config.evaluate.primary)
    else:
        status = _train_rungs(config, entries, selected, data, run_dir, force)
        if config.compress:
            trained = [name for name, state in status.items() if state in ("ok", "cached")]
            status.update(_compress(config, entries, data, run_dir, force, trained))
        board = leaderboard(config, entries, status, data, run_dir)
    return write_leaderboard(run_dir, board, status)


def _train_rungs(
    config: Config,
    entries: dict[str, ModelEntry],
    selected: list[str],
    data: PreparedData,
    run_dir: Path,
    force: bool,
    label: str = "",
) -> dict[str, str]:
    """Train each selected model unless cached; a failure is recorded and the others go on."""
    status = {name: cached_status(run_dir, config, entry) for name, entry in entries.items()}
    show = RungProgress(len(selected), label)
    for i, name in enumerate(selected, start=1):
        if status[name] == "cached" and not force:
            show.line(i, name, "cached")
            continue
        show.line(i, name, f"training {entries[name].type}")
        started = time.perf_counter()
        try:
            train_entry(config, entries[name], data, run_dir)
            status[name] = "ok"
            show.line(i, name, f"done in {time.perf_counter() - started:.1f}s")
        except TrainingInterrupted:
            raise  # the whole run stops (SIGTERM, Ctrl-C); its checkpoint is saved
        except Exception as exc:
            status[name] = f"failed: {type(exc).__name__}: {exc}".splitlines()[0]
            show.line(i, name, status[name])
    return status


def _compress(
    config: Config,
    entries: dict[str, ModelEntry],
    data: PreparedData,
    run_dir: Path,
    force: bool,
    trained: list[str],
) -> dict[str, str]:
    """The config's compress: section on the `trained` models (variants made before by the
    same method from the same weights are kept unless `force`)."""
    from ladder.compress.run import apply_compress
    from ladder.compress.variant import CompressContext

    context = CompressContext(config, run_dir, data, entries)
    show = RungProgress(0, "compress").note
    return apply_compress(context, reuse=not force, show=show, trained=trained)

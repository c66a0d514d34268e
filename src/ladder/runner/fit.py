"""Fit one model entry of the config: the glue between the config, the models and the trainer.

Both fitters return a `Fitted` model: `predict_proba(features)` and `save(folder) -> file name`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.config import Config, ModelEntry
from ladder.data import augment_batch, class_weights, oversample_indices
from ladder.errors import ConfigError
from ladder.evaluate import validation_metrics
from ladder.evaluate.compare import count_params
from ladder.export.artifact import NEURAL_WEIGHTS
from ladder.io import save_tensors
from ladder.models.classical import save_classical, with_class_weight, with_seed
from ladder.models.numpy_support import check_numpy_support
from ladder.registry import get_spec
from ladder.tasks import Task
from ladder.tasks.classification import CLASSIFICATION
from ladder.train import Checkpoint, History, ProgressBar, distributed
from ladder.train.batching import TokenBatching
from ladder.train.setup import TrainerSetup


@dataclass
class FittedClassical:
    """A fitted scikit-learn estimator taking flattened features."""

    estimator: Any
    model_type: str = ""
    scaling: Any = None  # a regression target's TargetScaling

    @property
    def model(self) -> Any:
        """What is exported: the fitted estimator."""
        return self.estimator

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities of preprocessed features."""
        return self.estimator.predict_proba(as_rows(features))

    def model_outputs(self, features: np.ndarray) -> np.ndarray:
        """What the model itself computes: probabilities, or values in its target space."""
        if hasattr(self.estimator, "predict_proba"):
            return self.predict_proba(features)
        return np.asarray(self.estimator.predict(as_rows(features)), dtype=np.float64)

    def predict_values(self, features: np.ndarray) -> np.ndarray:
        """Predicted values (regression), in the target's units."""
        outputs = self.model_outputs(features)
        return self.scaling.inverse(outputs) if self.scaling is not None else outputs

    def n_params(self) -> int | None:
        """The number of learned values (see `ladder.evaluate.compare.count_params`)."""
        return count_params(self.estimator)

    def save(self, folder: Path) -> str:
        """Save the estimator into `folder` (skops with trusted types only, or a boosting
        library's own text/JSON model format); returns its file name."""
        return save_classical(self.estimator, folder, self.model_type)


@dataclass
class FittedNeural:
    """A trained PyTorch module with the trainer that predicts with it."""

    trainer: Any
    scaling: Any = None  # a regression target's TargetScaling

    @property
    def model(self) -> Any:
        """What is exported: the trained module."""
        return self.trainer.module

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities of preprocessed features."""
        return self.trainer.predict_proba(features)

    def model_outputs(self, features: np.ndarray) -> np.ndarray:
        """What the network's objective predicts: probabilities, or standardised values."""
        return self.trainer.predict(features)

    def predict_values(self, features: np.ndarray) -> np.ndarray:
        """Predicted values (regression), in the target's units."""
        outputs = self.model_outputs(features)
        return self.scaling.inverse(outputs) if self.scaling is not None else outputs

    def n_params(self) -> int | None:
        """The number of trainable parameters of the module."""
        return count_params(self.trainer.module)

    def save(self, folder: Path) -> list[str]:
        """Save the weights as safetensors into `folder`, and the files the module needs to be
        rebuilt (a pretrained model's config); returns the file names, weights first."""
        module = self.trainer.module
        state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
        save_tensors(state, folder / NEURAL_WEIGHTS)
        extra = module.extra_files() if hasattr(module, "extra_files") else {}
        for name, text in extra.items():
            (folder / name).write_text(text, encoding="utf-8")
        return [NEURAL_WEIGHTS, *extra]


def as_rows(x: np.ndarray) -> np.ndarray:
    """Features as scikit-learn takes them: texts stay 1-D, anything else is flattened."""
    return x if x.ndim == 1 else x.reshape(len(x), -1)


def fit_classical(
    entry: ModelEntry,
    x: np.ndarray,
    y: np.ndarray,
    n_classes: int,
    config: Config,
    task: Task = CLASSIFICATION,
) -> FittedClassical:
    """Fit a scikit-learn model on flattened features, honouring seed and class balance."""
    flat = as_rows(x)
    estimator = get_spec(entry.type).builder(task.name)(entry.params, flat.shape[1:], n_classes)
    estimator = with_seed(estimator, config.seed)
    if config.data.balance == "class_weight":
        estimator = with_class_weight(estimator, entry.type)
    elif config.data.balance == "oversample":
        rows = oversample_indices(y, config.seed)
        flat, y = flat[rows], y[rows]
    estimator.fit(flat, y)
    return FittedClassical(estimator, entry.type)


def fit_neural(
    entry: ModelEntry,
    feature_shape: tuple[int, ...],
    n_classes: int,
    config: Config,
    device: str,
    model_dir: Path,
    train: tuple[np.ndarray, np.ndarray],
    val: tuple[np.ndarray | None, np.ndarray | None],
    resume: bool = False,
    pad_id: int | None = None,
    loss: Any = None,
    init: Callable[[Any], None] | None = None,
    task: Task = CLASSIFICATION,
    checkpoints: bool = True,
) -> tuple[FittedNeural, list[dict[str, Any]]]:
    """Train a PyTorch model with the trainer and its callbacks; returns it and its history.

    `pad_id`: the features are token ids padded with it (batches are trimmed, and bucketed by
    length when `entry.text.bucketing`). `loss`: the trainer's training loss hook
    (`(logits, labels, rows) -> loss`, e.g. distillation); default cross-entropy. `init`
    changes the freshly built module before training (e.g. a distilled student's embeddings).
    Without `checkpoints` (a tuning trial, never resumed) no checkpoint is written."""
    cfg = entry.train
    stopping = cfg.early_stopping
    if stopping is not None and val[0] is None and stopping.monitor.startswith("val_"):
        raise ConfigError(
            [
                f"models.{entry.name}.early_stopping: monitors {stopping.monitor} but there is no "
                "validation split; set data.split.val > 0 or early_stopping: null"
            ]
        )
    augment = config.data.augment
    if augment.enabled and len(feature_shape) != 3:
        raise ConfigError(
            ["data.augment: image augmentation needs image data; this data is tabular"]
        )
    spec = get_spec(entry.type)
    if spec.pytorch_twin is not None:
        check_numpy_support(entry.type, spec.pytorch_twin, cfg, device, distributed.world_size())
    module = spec.build(entry.params, feature_shape, n_classes)
    if init is not None:
        init(module)
    # the trainer adds early stopping itself when the config asks for it
    identity = {
        "model_type": entry.type,
        "model_config": entry.params.model_dump(mode="json"),
        "feature_shape": list(feature_shape),
        "n_classes": n_classes,
    }
    folder = model_dir / "checkpoints"
    callbacks = [
        History(model_dir / "history.csv"),
        *([Checkpoint(folder, identity=identity)] if checkpoints else []),
        ProgressBar(label=entry.name),
    ]

    y_train = train[1]
    setup = trainer_setup(config, entry, task, y_train, n_classes, pad_id)
    trainer = setup.trainer(module, cfg, device, callbacks, loss)
    sample_weights = setup.sample_weights
    history = trainer.fit(
        train[0],
        y_train,
        val[0],
        val[1],
        sample_weights=sample_weights,
        resume_from=folder if resume else None,
    )
    return FittedNeural(trainer), history


def trainer_setup(
    config: Config,
    entry: ModelEntry,
    task: Task,
    y_train: np.ndarray,
    n_classes: int,
    pad_id: int | None,
) -> TrainerSetup:
    """How the run sets up the Trainer of `entry` learning `task` on training targets
    `y_train` (a rung, and a pruned model's fine-tuning): the task's objective, class weights
    or oversampling (`data.balance`), validation metrics, image augmentation, seed and token
    batching."""
    classes = task.name == "classification"
    balance = config.data.balance if classes else "none"
    weights = class_weights(y_train, n_classes) if balance != "none" else None
    augment = config.data.augment
    return TrainerSetup(
        objective=task.objective(entry.train),
        seed=config.seed,
        class_weights=weights if balance == "class_weight" else None,
        val_metrics=validation_metrics(_monitored_metrics(config, entry.train))
        if classes
        else None,
        train_transform=(lambda x, g: augment_batch(x, augment, g)) if augment.enabled else None,
        batching=TokenBatching(pad_id, entry.text.bucketing) if pad_id is not None else None,
        sample_weights=weights[y_train]
        if balance == "oversample" and weights is not None
        else None,
    )


def _monitored_metrics(config: Config, cfg: Any) -> list[str]:
    """The validation metrics to log: the evaluate list plus the early-stopping monitor."""
    names = [m for m in config.evaluate.metrics if m != "log_loss"]
    monitor = cfg.early_stopping.monitor if cfg.early_stopping else ""
    if monitor.startswith("val_") and monitor != "val_loss" and monitor[4:] not in names:
        names.append(monitor[4:])
    return names

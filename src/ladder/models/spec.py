"""`ModelSpec`: what ladder knows of one model type (the registry's entries).

It lives apart from the registry so that model modules can declare their spec without importing
the registry that collects them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

Family = Literal["classical", "neural"]
DataKind = Literal["tabular", "image", "text"]
TaskName = Literal["classification", "regression", "generation", "seq2seq"]


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of one model type.

    `build(config, input_shape, n_outputs)` returns a scikit-learn estimator (classical) or an
    `nn.Module` mapping a batch of `input_shape` to `n_outputs` values (neural: the class
    logits, or one value per row for regression). `input_shape` is
    `(n_features,)` for tabular data, `(channels, height, width)` for images and
    `(max_length, vocab_size)` for token ids (the shape of their one-hot view): neural text
    models take int64 ids (batch, seq <= max_length), right-padded with
    `ladder.models.sequence.PAD_ID` (the pretrained model: with its own pad token id).
    Classical text models take a 1-D array of strings.

    `inputs` are the data kinds the type accepts. `load_module(config, folder, n_classes)`,
    when set, rebuilds the architecture from files an artifact holds (a pretrained model's
    own config) where the config alone is not enough. `train_defaults` replace the top-level
    `train:` values of their keys for this type (an entry's own keys still win): pretrained
    models fine-tune with their own recipe. `own_tokenizer`: the model brings its tokenizer
    (its config's `path`), so `text.tokenizer` is always `pretrained` for it.

    `tasks` are the tasks the type can learn. A classical type builds a different estimator per
    task: `build` the classifier, `build_regressor` (same signature) the regressor; a type
    without a classifier has `build=None`. Neural types build one module for every task.
    Language models (task generation, `ladder.models.language`) build with
    `build(config, (), vocab_size)`.

    `pytorch_twin`: a scratch type (`ladder.models.scratch_models`, computed in NumPy) names
    the PyTorch type with the same network; it trains on the CPU only, in fp32, in one process.
    """

    type: str
    family: Family
    config_cls: type[BaseModel]
    build: Callable[[Any, tuple[int, ...], int], Any] | None
    summary: str
    inputs: tuple[DataKind, ...] = ("tabular", "image")
    load_module: Callable[[Any, Path, int], Any] | None = None
    train_defaults: dict[str, Any] | None = None
    own_tokenizer: bool = False
    tasks: tuple[TaskName, ...] = ("classification",)
    build_regressor: Callable[[Any, tuple[int, ...], int], Any] | None = None
    pytorch_twin: str | None = None

    @property
    def trains_with_trainer(self) -> bool:
        """Whether the type is a network trained by ladder's Trainer (checkpoints, resume,
        torchrun, devices, compression), rather than a model fitted in one call."""
        return self.family == "neural"

    @property
    def native_backend(self) -> str:
        """The framework that predicts with the type when ONNX Runtime does not: torch for
        networks, sklearn for classical models (and the boosting libraries' own runtimes)."""
        return "torch" if self.family == "neural" else "sklearn"

    def builder(self, task: str) -> Callable[[Any, tuple[int, ...], int], Any]:
        """The function that builds this type for `task`: (config, input_shape, n_outputs)."""
        if task not in self.tasks:
            raise ValueError(
                f"model type {self.type} cannot learn {task} ({', '.join(self.tasks)})"
            )
        if task == "regression" and self.build_regressor is not None:
            return self.build_regressor
        if self.build is None:
            raise ValueError(f"model type {self.type} has no builder for {task}")
        return self.build

"""Multi-layer perceptron: the first neural rung of the ladder.

Any input shape is flattened first, so the same model takes tabular rows `(N, F)` and images
`(N, C, H, W)`. Each hidden block is Linear -> [BatchNorm] -> activation -> [Dropout].
"""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Literal

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253

from ladder.models.spec import ModelSpec

Activation = Literal["relu", "gelu", "tanh", "sigmoid"]

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "gelu": nn.GELU,
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
}


class MLPConfig(BaseModel):
    """Hyperparameters of the MLP."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[PositiveInt] = Field(default_factory=lambda: [128])
    activation: Activation = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)
    batchnorm: bool = False


class Block(nn.Module):
    """One hidden layer: Linear -> [BatchNorm1d] -> activation -> [Dropout]."""

    def __init__(self, n_in: int, n_out: int, config: MLPConfig) -> None:
        super().__init__()
        # the bias is redundant when a batchnorm follows (it has its own shift)
        self.linear = nn.Linear(n_in, n_out, bias=not config.batchnorm)
        self.norm = nn.BatchNorm1d(n_out) if config.batchnorm else nn.Identity()
        self.act = ACTIVATIONS[config.activation]()
        self.drop = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.act(self.norm(self.linear(x))))


class MLP(nn.Module):
    """Flatten -> hidden blocks -> Linear to `n_classes` logits."""

    def __init__(self, config: MLPConfig, input_shape: tuple[int, ...], n_classes: int) -> None:
        super().__init__()
        n_in = math.prod(input_shape)
        sizes = [n_in, *config.hidden]
        self.blocks = nn.Sequential(*(Block(a, b, config) for a, b in pairwise(sizes)))
        self.head = nn.Linear(sizes[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)  # (batch, features): images (batch, C, H, W) become rows
        return self.head(self.blocks(x))  # (batch, n_classes)


def build_mlp(config: MLPConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """An MLP from inputs of `input_shape` (any shape, flattened) to `n_classes` logits."""
    return MLP(config, tuple(input_shape), n_classes)


SPEC = ModelSpec(
    type="mlp",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=MLPConfig,
    build=build_mlp,
    summary="multi-layer perceptron (fully connected; flattens images)",
)

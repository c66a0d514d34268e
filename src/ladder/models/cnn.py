"""Convolutional networks for images: LeNet-5 and a small configurable CNN.

Inputs are float images `(N, C, H, W)`; the preprocessing resizes them to `image_size` when the
config sets one, so the model only sees `input_shape`.

- `lenet5`: conv(6, 5x5) -> pool -> conv(16, 5x5) -> pool -> FC 120 -> FC 84 -> logits, in its
  modern form: ReLU and max-pooling (the 1998 original used tanh and average pooling; ReLU trains
  faster with Adam-style optimizers). No padding: on 32x32 inputs the flatten size is the classic
  16x5x5 = 400; other sizes (at least 16x16) only change that flatten size.
- `simple`: one block per entry of `channels` (conv -> [batchnorm] -> ReLU, a 2x2 max-pool
  between blocks), then global average or max pooling and a linear head.
`dropout` applies before every fully connected layer of either architecture.
`lenet_widths` (conv1, conv2, fc1, fc2; default 6, 16, 120, 84) changes LeNet-5's layer widths:
structured pruning (`ladder.compress.prune`) saves the shrunk widths there.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any, Literal

import torch  # noqa: TID253
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from torch import nn  # noqa: TID253

from ladder.errors import LadderError
from ladder.models.spec import ModelSpec

LENET_MIN_SIZE = 16  # 16 -conv5-> 12 -pool-> 6 -conv5-> 2 -pool-> 1
LENET_WIDTHS = (6, 16, 120, 84)  # conv1 and conv2 channels, fc1 and fc2 units


class CNNConfig(BaseModel):
    """Hyperparameters of the CNN (`channels`, `kernel_size`, `batchnorm`, `pooling`: simple)."""

    model_config = ConfigDict(extra="forbid")

    arch: Literal["lenet5", "simple"] = "simple"
    image_size: int | None = Field(None, ge=4, description="images are resized to this size")
    channels: list[PositiveInt] = Field(default_factory=lambda: [32, 64], min_length=1)
    kernel_size: PositiveInt = 3
    batchnorm: bool = True
    dropout: float = Field(0.0, ge=0, lt=1)
    pooling: Literal["avg", "max"] = "avg"
    lenet_widths: list[PositiveInt] | None = Field(
        None,
        min_length=4,
        max_length=4,
        description="lenet5: conv1, conv2, fc1, fc2 widths (default 6, 16, 120, 84)",
    )

    @field_validator("kernel_size")
    @classmethod
    def _odd_kernel(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError("must be odd (so that padding keeps the image size)")
        return value

    @field_validator("image_size")
    @classmethod
    def _big_enough_for_lenet(cls, value: int | None, info: ValidationInfo) -> int | None:
        if value is not None and info.data.get("arch") == "lenet5" and value < LENET_MIN_SIZE:
            raise ValueError(f"lenet5 needs at least {LENET_MIN_SIZE}")
        return value

    @model_validator(mode="after")
    def _widths_are_lenet_only(self) -> CNNConfig:
        if self.lenet_widths is not None and self.arch != "lenet5":
            raise ValueError("lenet_widths applies to arch lenet5; use channels for arch simple")
        return self

    @model_serializer(mode="wrap")
    def _omit_default_widths(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # unset, the field stays out of dumps: configs, hashes and manifests read as before it
        data = handler(self)
        if self.lenet_widths is None:
            data.pop("lenet_widths", None)
        return data


def min_image_size(config: CNNConfig) -> int:
    """The smallest height/width the architecture accepts."""
    if config.arch == "lenet5":
        return LENET_MIN_SIZE
    return 2 ** (len(config.channels) - 1)  # one 2x2 pool between consecutive blocks


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max-pooling; the flatten size follows from the input size.

    `widths` are conv1's and conv2's channels and the two hidden FC layers' units."""

    def __init__(
        self,
        in_channels: int,
        height: int,
        width: int,
        n_classes: int,
        dropout: float,
        widths: tuple[int, int, int, int] = LENET_WIDTHS,
    ):
        super().__init__()
        c1, c2, f1, f2 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, kernel_size=5),  # (N, c1, H-4, W-4)
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c1, (H-4)/2, (W-4)/2)
            nn.Conv2d(c1, c2, kernel_size=5),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (N, c2, h, w); 16x5x5 for 32x32 inputs
        )
        h, w = _lenet_out(height), _lenet_out(width)
        self.classifier = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(c2 * h * w, f1),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(f1, f2),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(f2, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, c2, h, w)
        x = x.flatten(1)  # (N, c2 * h * w)
        return self.classifier(x)  # (N, n_classes)


def _lenet_out(size: int) -> int:
    """Height (or width) after LeNet's two conv5 + pool2 stages."""
    return ((size - 4) // 2 - 4) // 2


class ConvBlock(nn.Sequential):
    """conv (same padding) -> [BatchNorm2d] -> ReLU."""

    def __init__(self, n_in: int, n_out: int, kernel_size: int, batchnorm: bool) -> None:
        super().__init__(
            # the conv bias is redundant when a batchnorm follows (it has its own shift)
            nn.Conv2d(n_in, n_out, kernel_size, padding=kernel_size // 2, bias=not batchnorm),
            nn.BatchNorm2d(n_out) if batchnorm else nn.Identity(),
            nn.ReLU(),
        )


class SimpleCNN(nn.Module):
    """Conv blocks with 2x2 max-pooling between them, global pooling, then a linear head."""

    def __init__(self, config: CNNConfig, in_channels: int, n_classes: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        sizes = [in_channels, *config.channels]
        for i, (n_in, n_out) in enumerate(pairwise(sizes)):
            if i > 0:
                layers.append(nn.MaxPool2d(2))  # halves H and W
            layers.append(ConvBlock(n_in, n_out, config.kernel_size, config.batchnorm))
        self.features = nn.Sequential(*layers)
        pool = nn.AdaptiveAvgPool2d(1) if config.pooling == "avg" else nn.AdaptiveMaxPool2d(1)
        self.pool = pool
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(sizes[-1], n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (N, channels[-1], h, w)
        x = self.pool(x).flatten(1)  # (N, channels[-1])
        return self.head(x)  # (N, n_classes)


def build_cnn(config: CNNConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """A CNN from images of `input_shape` = (channels, height, width) to `n_classes` logits."""
    if len(input_shape) != 3:
        n_features = input_shape[0] if len(input_shape) == 1 else tuple(input_shape)
        raise LadderError(
            "cnn needs image data (channels, height, width); "
            f"got tabular input with {n_features} features"
        )
    channels, height, width = (int(s) for s in input_shape)
    minimum = min_image_size(config)
    if min(height, width) < minimum:
        raise LadderError(
            f"cnn ({config.arch}) needs images of at least {minimum}x{minimum}, got "
            f"{height}x{width}; set image_size (minimum {minimum}) in the model entry, "
            f"e.g. image_size: {max(minimum, 32)}"
        )
    if config.arch == "lenet5":
        widths = tuple(config.lenet_widths or LENET_WIDTHS)
        return LeNet5(channels, height, width, n_classes, config.dropout, widths)
    return SimpleCNN(config, channels, n_classes)


SPEC = ModelSpec(
    type="cnn",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=CNNConfig,
    build=build_cnn,
    summary="convolutional network for images: lenet5 (classic LeNet-5, ReLU) or simple",
    inputs=("image",),
)

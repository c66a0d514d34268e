"""The scratch rungs: `scratch_mlp`, `scratch_cnn` (LeNet-5) and `scratch_lstm`, networks whose
forward and backward passes are the NumPy code of `ladder.scratch`.

Each trains through the same Trainer, data pipeline, metrics, report and artifact as the PyTorch
rung with its architecture (its *twin*: `mlp`, `cnn` with arch lenet5, `rnn`), so the leaderboard
shows both side by side. The twin holds the parameters (`ladder.models.scratch_bridge`): built
with the same seed, the two rungs start from the same weights, and the artifact's ONNX graph is
the twin's, verified against the NumPy predictions.

What NumPy on the CPU does not have (a GPU, bf16/fp16, DDP, torch.compile, batchnorm, GELU) is
refused with the PyTorch rung that has it (`ladder.models.numpy_support`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, model_validator

from ladder.models.cnn import LENET_MIN_SIZE, CNNConfig, build_cnn
from ladder.models.mlp import MLPConfig, build_mlp
from ladder.models.rnn import RNNClassifier, RNNConfig
from ladder.models.scratch_bridge import NumpyModule
from ladder.models.sequence import PAD_ID, text_shape
from ladder.models.spec import ModelSpec
from ladder.scratch.lenet import LeNet5
from ladder.scratch.mlp import mlp
from ladder.scratch.text_rnn import TextRNN


class ScratchMLPConfig(BaseModel):
    """Hyperparameters of the NumPy MLP (those of `mlp`, less batchnorm and GELU)."""

    model_config = ConfigDict(extra="forbid")

    hidden: list[PositiveInt] = Field(default_factory=lambda: [128])
    activation: Literal["relu", "tanh", "sigmoid"] = "relu"
    dropout: float = Field(0.0, ge=0, lt=1)

    @model_validator(mode="before")
    @classmethod
    def _name_what_numpy_lacks(cls, data: Any) -> Any:
        if isinstance(data, dict):
            if data.get("batchnorm"):
                raise ValueError("scratch_mlp has no batchnorm in NumPy; use type mlp for it")
            if data.get("activation") == "gelu":
                raise ValueError("scratch_mlp has no GELU in NumPy; use type mlp for it")
            data = {k: v for k, v in data.items() if not (k == "batchnorm" and v is False)}
        return data


class ScratchCNNConfig(BaseModel):
    """Hyperparameters of the NumPy LeNet-5 (ReLU, max-pooling, as the `cnn` rung's lenet5)."""

    model_config = ConfigDict(extra="forbid")

    image_size: int | None = Field(
        None, ge=LENET_MIN_SIZE, description="images are resized to this size"
    )
    dropout: float = Field(0.0, ge=0, lt=1)


def build_scratch_mlp(
    config: ScratchMLPConfig, input_shape: tuple[int, ...], n_outputs: int
) -> NumpyModule:
    """A NumPy MLP (any input shape, flattened) with its PyTorch twin, the `mlp` rung."""
    twin_config = MLPConfig(**config.model_dump())
    twin = build_mlp(twin_config, input_shape, n_outputs)
    n_in = 1
    for size in input_shape:
        n_in *= int(size)
    network = mlp(n_in, config.hidden, n_outputs, config.activation, config.dropout)
    return NumpyModule(network, twin, "mlp")


def build_scratch_cnn(
    config: ScratchCNNConfig, input_shape: tuple[int, ...], n_outputs: int
) -> NumpyModule:
    """A NumPy LeNet-5 with its PyTorch twin, the `cnn` rung's lenet5."""
    twin_config = CNNConfig(arch="lenet5", image_size=config.image_size, dropout=config.dropout)
    twin = build_cnn(twin_config, input_shape, n_outputs)  # checks the image shape
    channels, height, width = (int(s) for s in input_shape)
    network = LeNet5(channels, height, width, n_outputs, config.dropout)
    return NumpyModule(network, twin, "cnn")


def build_scratch_lstm(
    config: RNNConfig, input_shape: tuple[int, ...], n_outputs: int
) -> NumpyModule:
    """A NumPy recurrent text classifier with its PyTorch twin, the `rnn` rung."""
    _, vocab_size = text_shape(input_shape, "scratch_lstm")
    twin = RNNClassifier(config, vocab_size, n_outputs)
    network = TextRNN(
        vocab_size,
        n_outputs,
        cell=config.cell,
        embedding_dim=config.embedding_dim,
        hidden=config.hidden,
        layers=config.layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        pooling=config.pooling,
        pad_id=PAD_ID,
    )
    return NumpyModule(network, twin, "rnn")


SPECS = [
    ModelSpec(
        type="scratch_mlp",
        family="neural",
        tasks=("classification", "regression"),
        config_cls=ScratchMLPConfig,
        build=build_scratch_mlp,
        summary="the mlp rung's network in NumPy (ladder.scratch): forward and backward by hand",
        pytorch_twin="mlp",
    ),
    ModelSpec(
        type="scratch_cnn",
        family="neural",
        tasks=("classification", "regression"),
        config_cls=ScratchCNNConfig,
        build=build_scratch_cnn,
        summary="LeNet-5 in NumPy (ladder.scratch): im2col convolution, pooling, backprop by hand",
        inputs=("image",),
        pytorch_twin="cnn",
    ),
    ModelSpec(
        type="scratch_lstm",
        family="neural",
        tasks=("classification", "regression"),
        config_cls=RNNConfig,
        build=build_scratch_lstm,
        summary="the rnn rung's network in NumPy (ladder.scratch): LSTM/GRU/RNN with BPTT by hand",
        inputs=("text",),
        pytorch_twin="rnn",
    ),
]
SPECS_BY_TYPE = {spec.type: spec for spec in SPECS}

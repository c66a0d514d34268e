"""Recurrent text classifier: embedding -> (bi)directional RNN, GRU or LSTM -> pooling -> Linear.

Sequences are packed by their true lengths, so padding never enters the recurrence and the
logits do not depend on how much padding a batch carries. Pooling turns the outputs into one
vector per text:

- `last`: the last layer's final hidden states (`h_n`); bidirectional, the forward direction at
  the last real token and the backward direction at the first token, concatenated.
- `mean` / `max`: over the last layer's outputs at the real tokens only.
"""

from __future__ import annotations

from typing import Literal

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence  # noqa: TID253

from ladder.models.sequence import (
    PAD_ID,
    init_embedding,
    lengths,
    masked_max,
    masked_mean,
    padding_mask,
    text_shape,
)
from ladder.models.spec import ModelSpec

Cell = Literal["rnn", "gru", "lstm"]

CELLS: dict[str, type[nn.RNNBase]] = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}


class RNNConfig(BaseModel):
    """Hyperparameters of the recurrent classifier."""

    model_config = ConfigDict(extra="forbid")

    cell: Cell = "lstm"
    embedding_dim: PositiveInt = 128
    hidden: PositiveInt = Field(128, description="hidden units per direction")
    layers: PositiveInt = 1
    bidirectional: bool = True
    dropout: float = Field(0.3, ge=0, lt=1, description="between layers and before the head")
    # the three tie within a point on rt-polarity sentences; max over time keeps the strongest
    # cue wherever it sits and gives every position a gradient, which suits longer texts better
    # than `last` (BiLSTM-max is also the best pooling in Conneau et al., 2017)
    pooling: Literal["last", "mean", "max"] = "max"


class RNNClassifier(nn.Module):
    """Token ids (batch, seq) -> logits (batch, n_classes)."""

    def __init__(self, config: RNNConfig, vocab_size: int, n_classes: int) -> None:
        super().__init__()
        self.pooling = config.pooling
        self.directions = 2 if config.bidirectional else 1
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        init_embedding(self.embedding)
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            bidirectional=config.bidirectional,
            # torch warns about inter-layer dropout on a single layer: there is no "between"
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.hidden * self.directions, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)  # (batch, seq, emb)
        # pack_padded_sequence wants the lengths on the CPU
        packed = pack_padded_sequence(x, lengths(ids).cpu(), batch_first=True, enforce_sorted=False)
        outputs, state = self.rnn(packed)
        if self.pooling == "last":
            h_n = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
            # (layers * directions, batch, hidden), back in input order (enforce_sorted=False)
            last = h_n[-self.directions :]  # (directions, batch, hidden): the last layer
            pooled = last.transpose(0, 1).flatten(1)  # (batch, directions * hidden)
        else:
            # padded to the longest row of the batch: (batch, seq', directions * hidden)
            out, _ = pad_packed_sequence(outputs, batch_first=True)
            mask = padding_mask(ids)[:, : out.size(1)]  # (batch, seq')
            pooled = masked_mean(out, mask) if self.pooling == "mean" else masked_max(out, mask)
        return self.head(self.drop(pooled))  # (batch, n_classes)


def build_rnn(config: RNNConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """A recurrent classifier over token ids; `input_shape` is (max_length, vocab_size)."""
    _, vocab_size = text_shape(input_shape, "rnn")
    return RNNClassifier(config, vocab_size, n_classes)


SPEC = ModelSpec(
    type="rnn",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=RNNConfig,
    build=build_rnn,
    summary="recurrent network for text: (bi)directional RNN, GRU or LSTM with pooling",
    inputs=("text",),
)

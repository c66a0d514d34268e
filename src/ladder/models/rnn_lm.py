"""`rnn_lm`: a recurrent language model in the char-rnn manner, built from the cells of the
text models (`ladder.models.rnn.CELLS`): embedding -> unidirectional RNN/GRU/LSTM -> a head
tied to the embedding when the widths match. Same contract as ladder's GPT:
`forward(idx, past) -> (logits, present)`, the recurrent state playing the part of the cache,
so scoring (`ladder.train.lm`) and generation treat every language model alike."""

from __future__ import annotations

from typing import Any

import torch  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253

from ladder.models.rnn import CELLS, Cell


class RNNLMConfig(BaseModel):
    """Hyperparameters of the recurrent language model."""

    model_config = ConfigDict(extra="forbid")

    cell: Cell = "lstm"
    embedding_dim: PositiveInt = 128
    hidden: PositiveInt = 256
    layers: PositiveInt = 2
    dropout: float = Field(0.1, ge=0, lt=1, description="on embeddings, between layers, outputs")
    block_size: PositiveInt = Field(128, description="the window length it trains on")


class RNNLM(nn.Module):
    """Token ids (batch, seq) -> next-token logits (batch, seq, vocab) and the final state."""

    def __init__(self, config: RNNLMConfig, vocab_size: int) -> None:
        super().__init__()
        self.config, self.vocab_size = config, vocab_size
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim)
        self.rnn = CELLS[config.cell](
            config.embedding_dim,
            config.hidden,
            num_layers=config.layers,
            batch_first=True,
            dropout=config.dropout if config.layers > 1 else 0.0,
        )
        self.drop = nn.Dropout(config.dropout)
        self.project = (
            nn.Identity()
            if config.hidden == config.embedding_dim
            else nn.Linear(config.hidden, config.embedding_dim, bias=False)
        )
        self.head = nn.Linear(config.embedding_dim, vocab_size)
        self.head.weight = self.embedding.weight  # tied: one table for reading and writing

    @property
    def block_size(self) -> int:
        """The window length it trains on (a recurrent model reads any length)."""
        return self.config.block_size

    def forward(self, idx: torch.Tensor, past: Any = None) -> tuple[torch.Tensor, Any]:
        """idx int64 (batch, seq), `past` the state after the tokens before (or None) ->
        logits (batch, seq, vocab) and the state after `idx`."""
        x = self.drop(self.embedding(idx))  # (batch, seq, embedding_dim)
        out, state = self.rnn(x, past)  # (batch, seq, hidden)
        return self.head(self.project(self.drop(out))), state

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """AdamW groups: weight decay on the recurrent and projection matrices only, not on the
        (tied) embedding or biases."""
        decay, rest, seen = [], [], set()
        for name, param in self.named_parameters():
            if id(param) in seen:
                continue
            seen.add(id(param))
            matrix = param.dim() >= 2 and not name.startswith(("embedding", "head"))
            (decay if matrix else rest).append(param)
        return [
            {"params": decay, "weight_decay": weight_decay, "lr": lr},
            {"params": rest, "weight_decay": 0.0, "lr": lr},
        ]


def build_rnn_lm(config: RNNLMConfig, vocab_size: int) -> RNNLM:
    """A recurrent language model over `vocab_size` token ids."""
    return RNNLM(config, vocab_size)

"""TextCNN (Kim, 2014): parallel 1-D convolutions over word embeddings, max-pooled over time.

Embedding -> one Conv1d per window width -> ReLU -> max over the windows that start at a real
token -> concat -> dropout -> Linear. Each conv sees its input right-padded with `width - 1`
zero vectors, so every window starting at a real token exists (texts shorter than the widest
filter still work) and the logits do not depend on how much padding a batch carries.
"""

from __future__ import annotations

import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt
from torch import nn  # noqa: TID253

from ladder.models.sequence import PAD_ID, init_embedding, masked_max, padding_mask, text_shape
from ladder.models.spec import ModelSpec


class TextCNNConfig(BaseModel):
    """Hyperparameters of the TextCNN."""

    model_config = ConfigDict(extra="forbid")

    embedding_dim: PositiveInt = 128
    widths: list[PositiveInt] = Field(default_factory=lambda: [3, 4, 5], min_length=1)
    filters: PositiveInt = Field(100, description="feature maps per window width")
    dropout: float = Field(0.5, ge=0, lt=1)


class TextCNN(nn.Module):
    """Token ids (batch, seq) -> logits (batch, n_classes)."""

    def __init__(self, config: TextCNNConfig, vocab_size: int, n_classes: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        init_embedding(self.embedding)
        self.widths = list(config.widths)
        self.convs = nn.ModuleList(
            nn.Conv1d(config.embedding_dim, config.filters, kernel_size=w) for w in self.widths
        )
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.filters * len(self.widths), n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        mask = padding_mask(ids)  # (batch, seq)
        # zeroing pad positions makes them identical to the zero vectors appended below, whatever
        # the pad row of the embedding holds, so extra padding never changes a window
        x = self.embedding(ids) * mask.unsqueeze(-1)  # (batch, seq, emb)
        x = x.transpose(1, 2)  # (batch, emb, seq): Conv1d wants channels first
        pooled = []
        for width, conv in zip(self.widths, self.convs, strict=True):
            # width - 1 zeros on the right: one window starts at every position, real or pad
            h = F.relu(conv(F.pad(x, (0, width - 1))))  # (batch, filters, seq)
            # only windows that start at a real token count
            pooled.append(masked_max(h.transpose(1, 2), mask))  # (batch, filters)
        features = torch.cat(pooled, dim=1)  # (batch, filters * len(widths))
        return self.head(self.drop(features))  # (batch, n_classes)


def build_textcnn(config: TextCNNConfig, input_shape: tuple[int, ...], n_classes: int) -> nn.Module:
    """A TextCNN over token ids; `input_shape` is (max_length, vocab_size)."""
    _, vocab_size = text_shape(input_shape, "textcnn")
    return TextCNN(config, vocab_size, n_classes)


SPEC = ModelSpec(
    type="textcnn",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=TextCNNConfig,
    build=build_textcnn,
    summary="convolutional network for text (Kim 2014): n-gram filters, max over time",
    inputs=("text",),
)

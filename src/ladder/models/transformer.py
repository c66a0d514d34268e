"""Transformer encoder classifier, written from scratch (Vaswani et al. 2017, "Attention Is All
You Need"), read top to bottom: positional encoding, self-attention, feed-forward, the residual
block, then the classifier.

Token ids `(batch, seq)` are right-padded with `PAD_ID` and start with [CLS]. Each id becomes an
embedding scaled by sqrt(d_model) plus a position encoding (fixed sinusoids or learned); `layers`
pre-norm blocks (x + attn(LN(x)), then x + FFN(LN(x))) mix the tokens, padding hidden from
every attention by a key mask; a final LayerNorm, then pooling ([CLS] at position 0, or the mean
of the real tokens) and a linear head give the logits. Pre-norm (rather than the paper's
post-norm) trains stably from scratch without a long learning-rate warm-up.
"""

from __future__ import annotations

import math
from typing import Literal

import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator
from torch import nn  # noqa: TID253

from ladder.models.sequence import PAD_ID, masked_mean, padding_mask, text_shape
from ladder.models.spec import ModelSpec


class TransformerConfig(BaseModel):
    """Hyperparameters of the Transformer encoder classifier."""

    model_config = ConfigDict(extra="forbid")

    d_model: PositiveInt = 128
    heads: PositiveInt = 4
    layers: PositiveInt = 2
    ff_dim: PositiveInt = 256
    dropout: float = Field(0.1, ge=0, lt=1)
    positional: Literal["sinusoidal", "learned"] = "sinusoidal"
    pooling: Literal["cls", "mean"] = "cls"

    @field_validator("heads")
    @classmethod
    def _heads_divide_d_model(cls, value: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")  # absent when d_model itself failed validation
        if d_model is not None and d_model % value != 0:
            divisors = [h for h in range(1, min(d_model, 16) + 1) if d_model % h == 0]
            raise ValueError(
                f"must divide d_model={d_model} (each head gets d_model / heads dimensions); "
                f"e.g. one of {divisors}"
            )
        return value


def sinusoidal_table(max_length: int, d_model: int) -> torch.Tensor:
    """The fixed encodings (max_length, d_model): PE[pos, 2i] = sin(pos / 10000^(2i/d)),
    PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    position = torch.arange(max_length, dtype=torch.float32).unsqueeze(1)  # (max_length, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float32)  # (ceil(d/2),)
    angle = position / 10000.0 ** (two_i / d_model)  # (max_length, ceil(d/2))
    table = torch.zeros(max_length, d_model)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])  # an odd d_model has one sin more
    return table


class PositionalEncoding(nn.Module):
    """Adds a position vector to each token vector: fixed sinusoids or a learned table."""

    def __init__(self, kind: str, max_length: int, d_model: int) -> None:
        super().__init__()
        self.kind = kind
        if kind == "learned":
            self.table = nn.Embedding(max_length, d_model)
        else:
            # a buffer moves with .to(device) but, not persistent, stays out of the state_dict:
            # it is a formula, not something learned
            self.register_buffer("sines", sinusoidal_table(max_length, d_model), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.shape[1]
        if self.kind == "learned":
            return x + self.table.weight[:seq]  # (seq, d_model) broadcasts over the batch
        return x + self.sines[:seq]


class SelfAttention(nn.Module):
    """Multi-head self-attention: softmax(Q K^T / sqrt(d_k) + mask) V per head, heads concatenated
    and projected. The mask is -inf at padded keys, so no token attends to padding."""

    def __init__(self, d_model: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(d_model, 3 * d_model)  # Q, K and V projections in one matmul
        self.out = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x (batch, seq, d_model), mask (batch, seq) True at real tokens -> same shape as x."""
        batch, seq, d_model = x.shape
        head_dim = d_model // self.heads
        qkv = self.qkv(x).view(batch, seq, 3, self.heads, head_dim)  # (batch, seq, 3, heads, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, seq, head_dim)
        keys = mask[:, None, None, :]  # (batch, 1, 1, seq): the same keys for every head and query
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=keys, dropout_p=self.dropout if self.training else 0.0
        )  # (batch, heads, seq, head_dim)
        y = y.transpose(1, 2).reshape(batch, seq, d_model)  # heads side by side again
        return self.out(y)


class FeedForward(nn.Sequential):
    """Position-wise feed-forward: Linear -> GELU -> Linear, the same for every token."""

    def __init__(self, d_model: int, ff_dim: int) -> None:
        super().__init__(nn.Linear(d_model, ff_dim), nn.GELU(), nn.Linear(ff_dim, d_model))


class Block(nn.Module):
    """Pre-norm encoder block: x + attn(LN(x)), then x + FFN(LN(x)), dropout on each branch."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.d_model)
        self.attn = SelfAttention(config.d_model, config.heads, config.dropout)
        self.norm2 = nn.LayerNorm(config.d_model)
        self.ff = FeedForward(config.d_model, config.ff_dim)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.norm1(x), mask))
        return x + self.drop(self.ff(self.norm2(x)))


class TransformerClassifier(nn.Module):
    """Embedding + positions -> encoder blocks -> LayerNorm -> pooling -> Linear to logits."""

    def __init__(self, config: TransformerConfig, max_length: int, vocab_size: int, n_classes: int):
        super().__init__()
        self.config = config
        self.max_length = max_length
        self.embed = nn.Embedding(vocab_size, config.d_model, padding_idx=PAD_ID)
        self.positions = PositionalEncoding(config.positional, max_length, config.d_model)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.head = nn.Linear(config.d_model, n_classes)
        self.apply(_init_weights)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (batch, seq) int64, right-padded with PAD_ID -> logits (batch, n_classes)."""
        if ids.shape[1] > self.max_length:
            raise ValueError(
                f"sequence of {ids.shape[1]} tokens is longer than max_length={self.max_length} "
                "the model was built for; truncate the token ids to max_length"
            )
        mask = padding_mask(ids)  # (batch, seq) True at real tokens
        # the sqrt(d_model) scale keeps token vectors as large as the position vectors (paper 3.4)
        x = self.embed(ids) * math.sqrt(self.config.d_model)  # (batch, seq, d_model)
        x = self.drop(self.positions(x))
        for block in self.blocks:
            x = block(x, mask)
        x = self.norm(x)  # pre-norm blocks leave the residual stream unnormalised
        # [CLS] (position 0) has attended to the whole text; the mean leaves padding out
        pooled = x[:, 0] if self.config.pooling == "cls" else masked_mean(x, mask)  # (batch, d)
        return self.head(self.drop(pooled))  # (batch, n_classes)


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """Small normal weights (std 0.02, as in GPT/BERT) for training from scratch; zero biases.

    Token embeddings get std d_model^-0.5 so that, scaled by sqrt(d_model), they have unit
    variance like the sinusoids; the padding row stays zero."""
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        std = 0.02 if module.padding_idx is None else module.embedding_dim**-0.5
        nn.init.normal_(module.weight, std=std)
        if module.padding_idx is not None:
            module.weight[module.padding_idx].zero_()


def build_transformer(
    config: TransformerConfig, input_shape: tuple[int, ...], n_classes: int
) -> nn.Module:
    """A Transformer encoder from token ids, `input_shape` = (max_length, vocab_size), to logits."""
    max_length, vocab_size = text_shape(input_shape, "transformer")
    return TransformerClassifier(config, max_length, vocab_size, n_classes)


SPEC = ModelSpec(
    type="transformer",
    family="neural",
    tasks=("classification", "regression"),
    config_cls=TransformerConfig,
    build=build_transformer,
    summary="Transformer encoder from scratch (pre-norm, multi-head self-attention) for text",
    inputs=("text",),
)

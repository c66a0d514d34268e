"""A Transformer encoder-decoder (Vaswani et al. 2017) assembled from ladder's own pieces, read
top to bottom: cross-attention, the decoder block, then the model.

The encoder is the text classifier's: token embeddings scaled by sqrt(d_model) plus position
vectors (`ladder.models.transformer.PositionalEncoding`), its pre-norm `Block`s with the source
padding mask, a final LayerNorm. The decoder blocks are GPT's: causal self-attention with its
KV cache and the MLP (`ladder.models.gpt`), with a pre-norm cross-attention sublayer between
them in which every target position attends to the real source positions. A final LayerNorm
and a linear head (tied to the target embedding by default) give the logits.

Decoding one token at a time (`step`) keeps each decoder layer's self-attention keys and
values (`past`); the cross-attention keys and values depend on the source only, so `encode`
computes them once per layer and carries them as the memory instead of the encoder output.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from torch import nn  # noqa: TID253

from ladder.data.special_ids import BOS_ID, EOS_ID, PAD_ID
from ladder.models.gpt import GPT, MLP, CausalSelfAttention, GPTConfig
from ladder.models.seq2seq_rnn import check_length, check_position, check_vocab_sizes, split_pair
from ladder.models.transformer import Block, PositionalEncoding, TransformerConfig

KV = tuple[torch.Tensor, torch.Tensor]  # keys and values, each (batch, heads, time, head_dim)


class Seq2SeqTransformerConfig(BaseModel):
    """Hyperparameters of the Transformer encoder-decoder; the vocabulary sizes come from the
    tokenizers (`build_seq2seq_transformer`). The feed-forward width is 4 x d_model on both
    sides, as GPT's MLP has it."""

    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(128, ge=1, description="width of every token vector")
    n_head: int = Field(4, ge=1, description="attention heads; must divide d_model")
    n_encoder_layers: int = Field(2, ge=1, le=48, description="encoder blocks")
    n_decoder_layers: int = Field(2, ge=1, le=48, description="decoder blocks")
    dropout: float = Field(0.1, ge=0, lt=1, description="on embeddings, attention, sublayers")
    positions: Literal["learned", "sinusoidal"] = Field(
        "learned", description="position vectors: a learned table or fixed sinusoids"
    )
    shared_vocab: bool = Field(
        True, description="one embedding table for source and target (one shared tokenizer)"
    )
    tie_embeddings: bool = Field(
        True, description="the output head reuses the target embedding matrix"
    )
    max_source_length: int = Field(128, ge=1, description="the longest source, in tokens")
    max_target_length: int = Field(
        128, ge=2, description="the longest decoder input ([bos] + target), in tokens"
    )

    @field_validator("n_head")
    @classmethod
    def _n_head_divides_d_model(cls, value: int, info: ValidationInfo) -> int:
        d_model = info.data.get("d_model")  # absent when d_model itself failed validation
        if d_model is not None and d_model % value != 0:
            divisors = [h for h in range(1, min(d_model, 16) + 1) if d_model % h == 0]
            raise ValueError(
                f"must divide d_model={d_model} (each head gets d_model / n_head dimensions); "
                f"e.g. one of {divisors}"
            )
        return value


class CrossAttention(nn.Module):
    """Multi-head attention from target positions to the source: queries from the decoder,
    keys and values from the encoder output, no weight on padded source positions."""

    def __init__(self, d_model: int, n_head: int, dropout: float) -> None:
        super().__init__()
        self.n_head = n_head
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)  # K and V in one matmul
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.resid_drop = nn.Dropout(dropout)

    def keys_values(self, memory: torch.Tensor) -> KV:
        """Encoder output (batch, S, d_model) -> keys and values (batch, heads, S, head_dim)."""
        batch, seq, d_model = memory.shape
        kv = self.key_value(memory).view(batch, seq, 2, self.n_head, d_model // self.n_head)
        k, v = kv.permute(2, 0, 3, 1, 4)  # each (batch, heads, S, head_dim)
        return k, v

    def forward(self, x: torch.Tensor, kv: KV, src_mask: torch.Tensor) -> torch.Tensor:
        """x (batch, T, d_model), the source's keys and values, src_mask (batch, S) True at
        real tokens -> (batch, T, d_model)."""
        batch, seq, d_model = x.shape
        q = self.query(x).view(batch, seq, self.n_head, d_model // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(
            q,  # (batch, heads, T, head_dim)
            *kv,
            attn_mask=src_mask[:, None, None, :],  # (batch, 1, 1, S): same keys for all
            dropout_p=self.dropout if self.training else 0.0,
        )  # (batch, heads, T, head_dim)
        y = y.transpose(1, 2).reshape(batch, seq, d_model)  # heads side by side again
        return self.resid_drop(self.proj(y))


class DecoderBlock(nn.Module):
    """Pre-norm decoder block: x + self_attn(LN(x)) (GPT's, causal, with its KV cache), then
    x + cross_attn(LN(x)), then x + MLP(LN(x)) (GPT's)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.norm_cross = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.cross = CrossAttention(config.n_embd, config.n_head, config.dropout)
        self.norm2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        cross_kv: KV,
        src_mask: torch.Tensor,
        past: KV | None,
        key_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, KV]:
        """x (batch, T, d_model) -> same shape, and this layer's self-attention keys/values
        of every target position so far (past's and x's)."""
        attended, present = self.attn(self.norm1(x), None, past, key_mask)
        x = x + attended
        x = x + self.cross(self.norm_cross(x), cross_kv, src_mask)
        return x + self.mlp(self.norm2(x)), present


def _attendable(src_mask: torch.Tensor) -> torch.Tensor:
    """src_mask with its first position always visible: an empty source (all padding) would
    otherwise give a softmax over nothing (NaN); other rows are unchanged."""
    first = torch.arange(src_mask.shape[1], device=src_mask.device) == 0  # (S,)
    return src_mask | first[None, :]


def _position_vectors(table: PositionalEncoding, positions: torch.Tensor) -> torch.Tensor:
    """The position vectors (*positions.shape, d_model) of a PositionalEncoding's table."""
    if table.kind == "learned":
        return table.table(positions)
    return table.sines[positions]


class Seq2SeqTransformer(nn.Module):
    """Source ids -> Transformer encoder -> decoder with cross-attention -> target logits.

    memory (`encode`): per decoder layer its cross-attention keys and values, flat
    (k_0, v_0, k_1, v_1, ...), each (batch, n_head, S, head_dim). past / present (`step`): per
    decoder layer its self-attention keys and values, flat the same way, each
    (batch, n_head, t, head_dim) with t the target tokens read so far (0 in `initial_past`)."""

    def __init__(
        self, config: Seq2SeqTransformerConfig, source_vocab_size: int, vocab_size: int
    ) -> None:
        super().__init__()
        check_vocab_sizes(source_vocab_size, vocab_size, config.shared_vocab)
        self.config = config
        self.pad_id, self.bos_id, self.eos_id = PAD_ID, BOS_ID, EOS_ID
        self.source_vocab_size, self.vocab_size = source_vocab_size, vocab_size
        self.max_source_length = config.max_source_length
        self.max_target_length = config.max_target_length
        d_model = config.d_model
        encoder_config = TransformerConfig(
            d_model=d_model,
            heads=config.n_head,
            layers=config.n_encoder_layers,
            ff_dim=4 * d_model,  # as GPT's MLP on the decoder side
            dropout=config.dropout,
            positional=config.positions,
        )
        decoder_config = GPTConfig(
            n_layer=config.n_decoder_layers,
            n_head=config.n_head,
            n_embd=d_model,
            block_size=config.max_target_length,
            dropout=config.dropout,
        )
        self.source_embedding = nn.Embedding(source_vocab_size, d_model)
        self.target_embedding = self.source_embedding
        if not config.shared_vocab:
            self.target_embedding = nn.Embedding(vocab_size, d_model)
        self.source_positions = PositionalEncoding(
            config.positions, config.max_source_length, d_model
        )
        self.target_positions = PositionalEncoding(
            config.positions, config.max_target_length, d_model
        )
        self.drop = nn.Dropout(config.dropout)
        self.encoder = nn.ModuleList(Block(encoder_config) for _ in range(config.n_encoder_layers))
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(
            DecoderBlock(decoder_config) for _ in range(config.n_decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size, bias=False)
        self.apply(_init_weights)
        for embedding in (self.source_embedding, self.target_embedding):
            # std d^-1/2: scaled by sqrt(d_model), unit variance like the sinusoids; as the
            # tied head, logits of unit scale from the final LayerNorm's output
            nn.init.normal_(embedding.weight, std=d_model**-0.5)
        for positions in (self.source_positions, self.target_positions):
            if positions.kind == "learned":  # as large as the sinusoids (RMS 1/sqrt(2)), which
                # the learned table stands in for: std 0.02 would drown under the tokens
                nn.init.normal_(positions.table.weight, std=0.5**0.5)
        if config.tie_embeddings:
            self.head.weight = self.target_embedding.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (batch, 2, L) int64: source ids, then [bos] + target, padded with pad_id ->
        logits (batch, L, vocab_size) for every decoder position (zeros past the longest)."""
        src, src_mask, tgt = split_pair(
            x, self.pad_id, self.max_source_length, self.max_target_length
        )
        memory = self.encode(src, src_mask)
        embedded = self.target_embedding(tgt) * math.sqrt(self.config.d_model)  # (b, T, d)
        hidden = self.drop(self.target_positions(embedded))
        logits, _ = self._decode(hidden, memory, src_mask, None, None)
        return F.pad(logits, (0, 0, 0, x.shape[2] - logits.shape[1]))  # (batch, L, vocab)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """src (batch, S) int64, src_mask (batch, S) True at real tokens -> memory: each
        decoder layer's cross-attention keys and values; ValueError when S exceeds
        max_source_length."""
        check_length("source", src.shape[1], self.max_source_length, "max_source_length")
        mask = _attendable(src_mask)
        # the sqrt(d_model) scale keeps token vectors as large as the position vectors
        x = self.source_embedding(src) * math.sqrt(self.config.d_model)  # (batch, S, d_model)
        x = self.drop(self.source_positions(x))
        for block in self.encoder:
            x = block(x, mask)
        x = self.encoder_norm(x)  # pre-norm blocks leave the residual stream unnormalised
        return tuple(t for layer in self.decoder for t in layer.cross.keys_values(x))

    def initial_past(
        self, memory: tuple[torch.Tensor, ...], src_mask: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        """Empty self-attention keys and values (batch, n_head, 0, head_dim) per layer."""
        batch, heads, _, head_dim = memory[0].shape
        empty = memory[0].new_zeros(batch, heads, 0, head_dim)
        return tuple(empty for _ in range(2 * len(self.decoder)))

    def step(
        self,
        tokens: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        past: tuple[torch.Tensor, ...],
        position: torch.Tensor | int,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """One decoder step: tokens (batch, 1) at `position` (int, or (batch,) int64: the
        target tokens before them), the keys/values of those -> logits (batch, vocab_size)
        and the keys/values one longer in time."""
        check_position(position, self.max_target_length)
        where = torch.as_tensor(position, device=tokens.device).reshape(-1, 1)  # (b | 1, 1)
        embedded = self.target_embedding(tokens) * math.sqrt(self.config.d_model)  # (b, 1, d)
        hidden = self.drop(embedded + _position_vectors(self.target_positions, where))
        # an all-True key mask picks GPT's masked attention path, whose result does not
        # depend on the cache's length: no branch on a shape, so the step traces for any t
        key_mask = torch.ones(
            tokens.shape[0], past[0].shape[2] + 1, dtype=torch.bool, device=tokens.device
        )  # (batch, t + 1)
        logits, present = self._decode(hidden, memory, src_mask, past, key_mask)
        return logits[:, 0], present

    def param_groups(self, lr: float, weight_decay: float) -> list[dict[str, Any]]:
        """Two AdamW groups, as GPT's: weight decay on Linear matrices only, none on norms,
        biases and embeddings (the tied head counted once, with the embedding)."""
        # GPT's rule reads only modules() and parameters(), so it serves this model unchanged
        return GPT.param_groups(self, lr, weight_decay)  # type: ignore[arg-type]

    def _decode(
        self,
        hidden: torch.Tensor,
        memory: tuple[torch.Tensor, ...],
        src_mask: torch.Tensor,
        past: tuple[torch.Tensor, ...] | None,
        key_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Embedded target positions (batch, T, d_model) -> logits (batch, T, vocab) and the
        self-attention keys/values of every target position so far, flat per layer."""
        mask = _attendable(src_mask)
        present: list[torch.Tensor] = []
        for i, layer in enumerate(self.decoder):
            cross_kv = (memory[2 * i], memory[2 * i + 1])
            layer_past = None if past is None else (past[2 * i], past[2 * i + 1])
            hidden, kv = layer(hidden, cross_kv, mask, layer_past, key_mask)
            present.extend(kv)
        return self.head(self.decoder_norm(hidden)), tuple(present)


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """Small normal weights (std 0.02, as GPT and the text Transformer use), zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def build_seq2seq_transformer(
    config: Seq2SeqTransformerConfig, source_vocab_size: int, target_vocab_size: int
) -> Seq2SeqTransformer:
    """A Transformer encoder-decoder from `source_vocab_size` to `target_vocab_size` ids."""
    return Seq2SeqTransformer(config, source_vocab_size, target_vocab_size)

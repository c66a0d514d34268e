"""GPT: a decoder-only Transformer language model, written from scratch (Radford et al. 2018/2019),
read top to bottom: rotary positions, causal self-attention with a KV cache, the MLP, the block,
then the model.

Token ids `(batch, seq)` become embeddings plus a learned position vector (or, with rotary
positions, no position vector: queries and keys are rotated by an angle proportional to their
position instead, Su et al. 2021). `n_layer` pre-norm blocks (x + attn(LN(x)), then
x + MLP(LN(x))) mix them, each token seeing only itself and the tokens before it; a final
LayerNorm and a linear head, which shares its weights with the token embedding, give next-token
logits at every position.

The KV cache: attention at a new position needs the keys and values of every earlier position,
and those never change (causality), so `forward` returns each layer's keys and values and takes
them back (`past`) to process only the new tokens. Generation then costs one token's work per
step instead of the whole context's (`ladder.generate`).
"""

from __future__ import annotations

import math
from typing import Literal

import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationInfo, field_validator
from torch import nn  # noqa: TID253

KV = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values (batch, heads, seq, head_dim)
Past = tuple[KV, ...]  # one KV per layer


class GPTConfig(BaseModel):
    """Hyperparameters of the GPT; the vocabulary size comes from the tokenizer (`build_gpt`)."""

    model_config = ConfigDict(extra="forbid")

    n_layer: PositiveInt = 4
    n_head: PositiveInt = 4
    n_embd: PositiveInt = 128
    block_size: PositiveInt = 128
    dropout: float = Field(0.0, ge=0, lt=1)
    bias: bool = True
    positions: Literal["learned", "rotary"] = "learned"

    @field_validator("n_embd")
    @classmethod
    def _divisible_by_n_head(cls, value: int, info: ValidationInfo) -> int:
        n_head = info.data.get("n_head")  # absent when n_head itself failed validation
        if n_head is not None and value % n_head != 0:
            nearest = sorted({max(n_head, value - value % n_head), value - value % n_head + n_head})
            raise ValueError(
                f"must be divisible by n_head={n_head} (each head gets n_embd / n_head "
                f"dimensions); e.g. {' or '.join(map(str, nearest))}"
            )
        return value

    @field_validator("positions")
    @classmethod
    def _rotary_needs_even_heads(cls, value: str, info: ValidationInfo) -> str:
        n_head, n_embd = info.data.get("n_head"), info.data.get("n_embd")
        if value == "rotary" and n_head and n_embd and (n_embd // n_head) % 2 != 0:
            raise ValueError(
                f"rotary needs an even head size (it rotates pairs of dimensions); "
                f"n_embd / n_head = {n_embd // n_head}"
            )
        return value


def rotary_tables(block_size: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin (block_size, head_dim) of the angles pos * 10000^(-2i/head_dim): dimension
    pair i turns at its own frequency, as the sinusoidal encodings do."""
    inv_freq = 10000.0 ** -(torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
    angle = torch.arange(block_size, dtype=torch.float32)[:, None] * inv_freq  # (block, hd/2)
    angle = torch.cat((angle, angle), dim=-1)  # (block, head_dim): pair i is (i, i + hd/2)
    return angle.cos(), angle.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotates each pair (x[i], x[i + head_dim/2]) of x (batch, heads, seq, head_dim) by the
    angle its position gives (cos, sin: (seq, head_dim)). The dot product of a rotated query and
    key then depends only on their distance: relative positions, with no learned table."""
    first, second = x.chunk(2, dim=-1)
    turned = torch.cat((-second, first), dim=-1)  # the pair rotated by 90 degrees
    return x * cos + turned * sin


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention where each position attends to itself and earlier positions
    only, including those held in the KV cache."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # one matmul
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout
        self.resid_drop = nn.Dropout(config.dropout)

    def forward(
        self,
        x: torch.Tensor,
        rope: KV | None,
        past: KV | None,
        key_mask: torch.Tensor | None = None,
        past_length: int | None = None,
    ) -> tuple[torch.Tensor, KV]:
        """x (batch, seq, n_embd), rope the (cos, sin) of x's positions or None, past the keys
        and values of the earlier positions or None, key_mask (batch, t_past + seq) False
        where a key is padding -> (same shape as x, keys and values of all positions).
        With `past_length`, past is a cache with room filled up to past_length: the new keys
        and values are written into it, and it is returned."""
        batch, seq, n_embd = x.shape
        head_dim = n_embd // self.n_head
        qkv = self.qkv(x).view(batch, seq, 3, self.n_head, head_dim)  # (b, seq, 3, heads, hd)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (batch, heads, seq, head_dim)
        if rope is not None:
            q, k = rotate(q, *rope), rotate(k, *rope)  # the cache holds keys already rotated
        if past is not None and past_length is not None:
            # written in place after the filled part: no copy of the whole cache per token
            end = past_length + seq
            past[0][:, :, past_length:end] = k
            past[1][:, :, past_length:end] = v
            present = past
            k, v = past[0][:, :, :end], past[1][:, :, :end]  # (batch, heads, end, head_dim)
        elif past is not None:
            k = torch.cat((past[0], k), dim=2)  # (batch, heads, t_past + seq, head_dim)
            v = torch.cat((past[1], v), dim=2)
            present = (k, v)
        else:
            present = (k, v)
        t_past = k.shape[2] - seq
        dropout = self.dropout if self.training else 0.0
        if key_mask is not None:
            # rows of different lengths in one batch: the causal triangle (aligned to the
            # end, as below) and, per row, no padding key
            allowed = torch.ones(seq, t_past + seq, dtype=torch.bool, device=x.device)
            allowed = allowed.tril(diagonal=t_past) & key_mask[:, None, None, :]  # (b,1,seq,t)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        elif t_past == 0:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        elif seq == 1:  # one new token (decoding) sees every key: no mask at all
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
        else:
            # is_causal aligns the triangle top-left, which is wrong for queries that start at
            # t_past: query i (at position t_past + i) sees keys 0 .. t_past + i
            allowed = torch.ones(seq, t_past + seq, dtype=torch.bool, device=x.device)
            allowed = allowed.tril(diagonal=t_past)  # (seq, t_past + seq)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(batch, seq, n_embd)  # (batch, seq, n_embd): heads joined
        return self.resid_drop(self.proj(y)), present


class MLP(nn.Module):
    """Position-wise feed-forward: Linear to 4 x n_embd -> GELU -> Linear back -> dropout."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.act = nn.GELU()
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.drop = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.proj(self.act(self.fc(x))))


class Block(nn.Module):
    """Pre-norm decoder block: x + attn(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.norm2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self,
        x: torch.Tensor,
        rope: KV | None,
        past: KV | None,
        key_mask: torch.Tensor | None = None,
        past_length: int | None = None,
    ) -> tuple[torch.Tensor, KV]:
        attended, present = self.attn(self.norm1(x), rope, past, key_mask, past_length)
        x = x + attended
        return x + self.mlp(self.norm2(x)), present


class GPT(nn.Module):
    """Token embedding (+ learned positions) -> decoder blocks -> LayerNorm -> tied LM head."""

    def __init__(self, config: GPTConfig, vocab_size: int) -> None:
        super().__init__()
        self.config = config
        self.vocab_size = vocab_size
        self.wte = nn.Embedding(vocab_size, config.n_embd)
        self.wpe: nn.Embedding | None = None  # learned positions; rotary ones are tables
        if config.positions == "learned":
            self.wpe = nn.Embedding(config.block_size, config.n_embd)
        else:
            cos, sin = rotary_tables(config.block_size, config.n_embd // config.n_head)
            # buffers move with .to(device); not persistent: a formula, not something learned
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.norm = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, vocab_size, bias=False)
        # weight tying (Press & Wolf 2017): reading a token in and writing it out share one
        # matrix, saving vocab x n_embd parameters and training better on small data
        self.lm_head.weight = self.wte.weight
        self.apply(_init_weights)
        # GPT-2: each block adds two projections to the residual stream; scaling them by
        # 1/sqrt(2 n_layer) keeps the stream's variance from growing with depth
        std = 0.02 / math.sqrt(2 * config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, std=std)
            nn.init.normal_(block.mlp.proj.weight, std=std)

    def forward(
        self,
        idx: torch.Tensor,
        past: Past | None = None,
        positions: torch.Tensor | None = None,
        key_mask: torch.Tensor | None = None,
        past_length: int | None = None,
    ) -> tuple[torch.Tensor, Past]:
        """idx (batch, seq) int64, past the cache a previous call returned (or None) ->
        (logits (batch, seq, vocab_size), the cache of every position so far).

        With a cache, idx holds only the new tokens: their positions continue from the cache's
        length. For rows of different lengths in one batch (batched decoding), `positions`
        (batch, seq) gives each row's own positions and `key_mask` (batch, t_past + seq) marks
        with False the cache entries that are padding, which no query attends to. With
        `past_length`, past's tensors have room (batch, heads, capacity, head_dim), filled up
        to past_length: the new keys and values are written into them in place (no copy of
        the cache per step) and the same tensors come back as the cache."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be (batch, seq) token ids; got shape {tuple(idx.shape)}")
        seq = idx.shape[1]
        if past is not None and len(past) != self.config.n_layer:
            raise ValueError(f"past has {len(past)} layers; this model has {self.config.n_layer}")
        t_past = 0 if past is None else past[0][0].shape[2]
        if past_length is not None:
            if past is None or not 0 <= past_length <= t_past - seq:
                raise ValueError(
                    f"past_length={past_length} needs a cache with room for {seq} more tokens "
                    f"after it; got {'none' if past is None else t_past} positions"
                )
            t_past = past_length
        if t_past + seq > self.config.block_size:
            raise ValueError(
                f"{t_past} cached + {seq} new tokens exceed block_size={self.config.block_size}, "
                "the longest context the model was built for; keep only the last block_size "
                "tokens (and drop the cache)"
            )
        if key_mask is not None and tuple(key_mask.shape) != (idx.shape[0], t_past + seq):
            raise ValueError(
                f"key_mask must be (batch, t_past + seq) = {(idx.shape[0], t_past + seq)}; "
                f"got {tuple(key_mask.shape)}"
            )
        if positions is None:
            positions = torch.arange(t_past, t_past + seq, device=idx.device)  # (seq,)
        elif tuple(positions.shape) != tuple(idx.shape):
            raise ValueError(f"positions must have idx's shape {tuple(idx.shape)}")
        elif int(positions.max()) >= self.config.block_size:
            raise ValueError(f"positions must be below block_size={self.config.block_size}")
        x = self.wte(idx)  # (batch, seq, n_embd)
        rope = None
        if self.wpe is not None:
            x = x + self.wpe(positions)  # (seq | batch x seq, n_embd) broadcasts
        else:
            rope = (self.rope_cos[positions], self.rope_sin[positions])  # each (seq, head_dim)
            if positions.dim() == 2:  # (batch, seq, head_dim) -> (batch, 1, seq, head_dim)
                rope = (rope[0].unsqueeze(1), rope[1].unsqueeze(1))  # broadcast over heads
        x = self.drop(x)
        present = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, rope, None if past is None else past[i], key_mask, past_length)
            present.append(kv)
        logits = self.lm_head(self.norm(x))  # (batch, seq, vocab_size)
        return logits, tuple(present)

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """Two AdamW groups: weight decay on the matrices of Linear layers; none on norms,
        biases and embeddings (decaying those only pulls scales, shifts and rare tokens'
        vectors to zero). The tied head is the token embedding, so it counts once, undecayed."""
        embeddings = {id(m.weight) for m in self.modules() if isinstance(m, nn.Embedding)}
        matrices = {
            id(m.weight)
            for m in self.modules()
            if isinstance(m, nn.Linear) and id(m.weight) not in embeddings
        }
        params = list(self.parameters())  # each Parameter once, the tied one included
        return [
            {
                "params": [p for p in params if id(p) in matrices],
                "lr": lr,
                "weight_decay": weight_decay,
            },
            {"params": [p for p in params if id(p) not in matrices], "lr": lr, "weight_decay": 0.0},
        ]

    def n_params(self, non_embedding: bool = True) -> int:
        """The number of parameters (the tied matrix once); `non_embedding` leaves out the
        token and position tables, the count scaling laws use (Kaplan et al. 2020)."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding:
            total -= self.wte.weight.numel()
            if self.wpe is not None:
                total -= self.wpe.weight.numel()
        return total


@torch.no_grad()
def _init_weights(module: nn.Module) -> None:
    """GPT-2's initialisation: normal weights with std 0.02, zero biases."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


def build_gpt(config: GPTConfig, vocab_size: int) -> GPT:
    """A GPT over `vocab_size` token ids (the tokenizer's vocabulary)."""
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1; got {vocab_size}")
    return GPT(config, vocab_size)

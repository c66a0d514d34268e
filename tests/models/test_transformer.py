"""The Transformer encoder: config validation, shapes, padding, attention masking, learnability."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ladder.errors import LadderError
from ladder.models.sequence import PAD_ID
from ladder.models.transformer import (
    SPEC,
    SelfAttention,
    TransformerConfig,
    build_transformer,
    sinusoidal_table,
)

CLS = 2
SMALL = {"d_model": 16, "heads": 2, "layers": 1, "ff_dim": 32}


def _ids(batch: int, seq: int, vocab: int, generator: torch.Generator) -> torch.Tensor:
    """Random texts starting with [CLS], right-padded to `seq` with random lengths >= 1."""
    ids = torch.randint(3, vocab, (batch, seq), generator=generator)
    ids[:, 0] = CLS
    n_real = torch.randint(1, seq + 1, (batch,), generator=generator)
    ids[torch.arange(seq) >= n_real[:, None]] = PAD_ID
    return ids


def test_defaults_and_spec():
    config = TransformerConfig()
    assert (config.d_model, config.heads, config.layers, config.ff_dim) == (128, 4, 2, 256)
    assert (config.dropout, config.positional, config.pooling) == (0.1, "sinusoidal", "cls")
    assert (SPEC.type, SPEC.family, SPEC.config_cls, SPEC.inputs) == (
        "transformer",
        "neural",
        TransformerConfig,
        ("text",),
    )
    assert SPEC.build is build_transformer


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize(
    "sizes", [SMALL, {"d_model": 24, "heads": 3, "layers": 2, "ff_dim": 8}, {"heads": 1}]
)
def test_logits_shape(positional, pooling, sizes):
    config = TransformerConfig(**{**SMALL, **sizes}, positional=positional, pooling=pooling)
    model = build_transformer(config, (12, 50), 3)
    ids = _ids(5, 9, 50, torch.Generator().manual_seed(0))
    assert model(ids).shape == (5, 3)
    assert model(ids[:, :1]).shape == (5, 3)  # [CLS] alone


@pytest.mark.parametrize("positional", ["sinusoidal", "learned"])
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_extra_right_padding_changes_nothing(positional, pooling):
    torch.manual_seed(0)
    config = TransformerConfig(**{**SMALL, "layers": 2}, positional=positional, pooling=pooling)
    model = build_transformer(config, (20, 40), 4).eval()
    ids = _ids(6, 8, 40, torch.Generator().manual_seed(1))
    padded = F.pad(ids, (0, 12), value=PAD_ID)  # (6, 20)
    assert torch.allclose(model(ids), model(padded), atol=1e-5)


def test_longer_than_max_length_is_rejected():
    model = build_transformer(TransformerConfig(**SMALL), (8, 30), 2)
    ids = torch.full((2, 9), 5)
    with pytest.raises(ValueError, match="longer than max_length=8"):
        model(ids)


def test_non_text_input_shape_is_rejected():
    with pytest.raises(LadderError, match="needs text data"):
        build_transformer(TransformerConfig(**SMALL), (3, 32, 32), 2)


def test_heads_must_divide_d_model():
    with pytest.raises(ValidationError) as info:
        TransformerConfig(d_model=30, heads=4)
    [error] = info.value.errors()
    assert error["loc"] == ("heads",)
    assert "must divide d_model=30" in error["msg"]


@pytest.mark.parametrize(
    "params",
    [
        {"d_model": 0},
        {"layers": 0},
        {"dropout": 1.0},
        {"positional": "rotary"},
        {"pooling": "max"},
        {"n_heads": 4},
    ],
)
def test_invalid_configs(params):
    with pytest.raises(ValidationError):
        TransformerConfig(**params)


def test_attention_ignores_masked_keys():
    torch.manual_seed(0)
    attn = SelfAttention(d_model=8, heads=2, dropout=0.0).eval()
    x = torch.randn(2, 5, 8)
    mask = torch.tensor([[True, True, True, False, False], [True, False, False, False, False]])
    changed = x.clone()
    changed[~mask] = torch.randn(int((~mask).sum()), 8) * 100  # new keys and values there
    out, out_changed = attn(x, mask), attn(changed, mask)
    assert torch.allclose(out[mask], out_changed[mask], atol=1e-5)
    # without the mask the same change does reach the real tokens
    full = torch.ones_like(mask)
    assert not torch.allclose(attn(x, full)[mask], attn(changed, full)[mask], atol=1e-3)


def test_sinusoidal_buffer_follows_the_formula_and_is_not_saved():
    model = build_transformer(TransformerConfig(**SMALL), (10, 30), 2)
    table = model.positions.sines
    assert table.shape == (10, 16)
    assert torch.equal(table, sinusoidal_table(10, 16))
    for pos, i in [(0, 0), (3, 1), (7, 4), (9, 7)]:
        angle = pos / 10000 ** (2 * i / 16)
        assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
        assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    assert not any("sines" in key for key in model.state_dict())
    learned = build_transformer(TransformerConfig(**SMALL, positional="learned"), (10, 30), 2)
    assert learned.state_dict()["positions.table.weight"].shape == (10, 16)


def test_init_zeroes_the_padding_embedding():
    model = build_transformer(TransformerConfig(**SMALL), (10, 30), 2)
    assert torch.count_nonzero(model.embed.weight[PAD_ID]) == 0
    assert torch.count_nonzero(model.embed.weight[CLS]) == 16


def test_gradients_reach_the_embedding():
    model = build_transformer(TransformerConfig(**SMALL), (10, 30), 2)
    ids = _ids(4, 6, 30, torch.Generator().manual_seed(2))
    F.cross_entropy(model(ids), torch.tensor([0, 1, 0, 1])).backward()
    grad = model.embed.weight.grad
    assert grad is not None
    assert grad[CLS].abs().sum() > 0
    assert grad[PAD_ID].abs().sum() == 0  # padding_idx: the pad row is never trained


def test_learns_whether_a_token_appears():
    """Class = whether token 5 occurs anywhere: needs attention to move it to [CLS]."""
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ids = _ids(128, 10, 12, gen)
    ids[ids == 5] = 6
    has = torch.rand(128, generator=gen) < 0.5
    n_real = (ids != PAD_ID).sum(1)
    where = (torch.rand(128, generator=gen) * (n_real - 1)).long() + 1  # a real, non-[CLS] slot
    rows = has & (n_real > 1)
    ids[rows, where[rows]] = 5
    y = (ids == 5).any(1).long()
    config = TransformerConfig(**SMALL, dropout=0.0)
    model = build_transformer(config, (10, 12), 2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        optimizer.zero_grad()
        F.cross_entropy(model(ids), y).backward()
        optimizer.step()
    model.eval()
    accuracy = (model(ids).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.95

"""The GPT: config validation, shapes, causality, the KV cache, weight tying, parameter groups,
and that it learns a repeated string."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from ladder.generate.sampling import generate_ids
from ladder.models.gpt import GPTConfig, build_gpt

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32}
VOCAB = 50
POSITIONS = ["learned", "rotary"]


def _model(positions: str = "learned", **changes) -> nn.Module:
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**{**TINY, **changes}, positions=positions), VOCAB)
    return model.eval()  # dropout off, so two forwards of the same ids agree


def _ids(batch: int, seq: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, seq), generator=torch.Generator().manual_seed(seed))


def test_defaults():
    config = GPTConfig()
    assert (config.n_layer, config.n_head, config.n_embd, config.block_size) == (4, 4, 128, 128)
    assert (config.dropout, config.bias, config.positions) == (0.0, True, "learned")
    assert "vocab_size" not in GPTConfig.model_fields


def test_n_embd_must_be_divisible_by_n_head():
    with pytest.raises(ValidationError) as error:
        GPTConfig(n_head=4, n_embd=30)
    (problem,) = error.value.errors()
    assert problem["loc"] == ("n_embd",)
    assert "divisible by n_head=4" in problem["msg"]
    assert "28 or 32" in problem["msg"]


def test_config_refuses_unknown_keys_and_bad_values():
    with pytest.raises(ValidationError, match="vocab_size"):
        GPTConfig(vocab_size=100)
    with pytest.raises(ValidationError, match="positions"):
        GPTConfig(positions="sinusoidal")
    with pytest.raises(ValidationError, match="dropout"):
        GPTConfig(dropout=1.0)
    with pytest.raises(ValidationError, match="even head size"):
        GPTConfig(n_head=2, n_embd=6, positions="rotary")  # head size 3
    with pytest.raises(ValueError, match="vocab_size"):
        build_gpt(GPTConfig(**TINY), 0)


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("bias", [True, False])
def test_shapes(positions, bias):
    model = _model(positions, bias=bias)
    logits, present = model(_ids(3, 10))
    assert logits.shape == (3, 10, VOCAB)
    assert len(present) == TINY["n_layer"]
    for k, v in present:
        assert k.shape == v.shape == (3, 2, 10, 16)  # (batch, heads, seq, head_dim)
    assert model(_ids(1, 32))[0].shape == (1, 32, VOCAB)  # the whole block
    linears = [m for m in model.modules() if isinstance(m, nn.Linear) and m is not model.lm_head]
    assert all((m.bias is not None) == bias for m in linears)
    assert all((m.bias is not None) == bias for m in model.modules() if isinstance(m, nn.LayerNorm))


@pytest.mark.parametrize("positions", POSITIONS)
def test_causal(positions):
    model = _model(positions)
    ids = _ids(2, 12)
    changed = ids.clone()
    changed[:, 7] = (ids[:, 7] + 1) % VOCAB
    before, after = model(ids)[0], model(changed)[0]
    torch.testing.assert_close(before[:, :7], after[:, :7], rtol=0, atol=0)
    assert not torch.allclose(before[:, 7:], after[:, 7:])  # the changed token itself and later


@pytest.mark.parametrize("positions", POSITIONS)
def test_kv_cache_gives_the_full_forward(positions):
    model = _model(positions)
    ids = _ids(2, 20)
    full, _ = model(ids)
    pieces, past = [], None
    for start, stop in [
        (0, 7),
        (7, 8),
        (8, 9),
        (9, 15),
        (15, 20),
    ]:  # a prompt, single tokens, a run
        logits, past = model(ids[:, start:stop], past)
        pieces.append(logits)
        for k, v in past:
            assert k.shape == v.shape == (2, 2, stop, 16)  # past + this step
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=0, atol=1e-5)


@pytest.mark.parametrize("positions", POSITIONS)
def test_order_matters(positions):
    model = _model(positions)
    # without positions, attention sees a bag of tokens: both orders would give the same logits
    first, _ = model(torch.tensor([[7, 5, 5]]))
    second, _ = model(torch.tensor([[5, 7, 5]]))
    assert not torch.allclose(first[0, -1], second[0, -1])


def test_context_longer_than_block_size_is_refused():
    model = _model()
    with pytest.raises(ValueError, match=r"0 cached \+ 33 new tokens exceed block_size=32"):
        model(_ids(1, 33))
    _, past = model(_ids(1, 30))
    with pytest.raises(ValueError, match=r"30 cached \+ 3 new tokens exceed block_size=32"):
        model(_ids(1, 3), past)
    with pytest.raises(ValueError, match="past has 1 layers"):
        model(_ids(1, 1), past[:1])


def test_head_is_tied_to_the_token_embedding():
    model = _model()
    assert model.lm_head.weight is model.wte.weight
    names = [name for name, _ in model.named_parameters()]
    assert "lm_head.weight" not in names  # counted once, under the embedding


def test_gpt2_init():
    model = _model(n_layer=8, n_embd=64)
    assert model.wte.weight.std().item() == pytest.approx(0.02, rel=0.1)
    assert model.blocks[0].attn.qkv.weight.std().item() == pytest.approx(0.02, rel=0.1)
    scaled = 0.02 / math.sqrt(2 * 8)
    for block in model.blocks:
        assert block.attn.proj.weight.std().item() == pytest.approx(scaled, rel=0.1)
        assert block.mlp.proj.weight.std().item() == pytest.approx(scaled, rel=0.1)
        assert torch.all(block.mlp.fc.bias == 0)


@pytest.mark.parametrize("positions", POSITIONS)
def test_param_groups_cover_every_parameter_once(positions):
    model = _model(positions)
    decay, no_decay = model.param_groups(lr=3e-4, weight_decay=0.1)
    assert (decay["lr"], decay["weight_decay"]) == (3e-4, 0.1)
    assert (no_decay["lr"], no_decay["weight_decay"]) == (3e-4, 0.0)
    grouped = [id(p) for p in decay["params"] + no_decay["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each exactly once
    linear_weights = {
        id(m.weight) for m in model.modules() if isinstance(m, nn.Linear) and m is not model.lm_head
    }
    assert {id(p) for p in decay["params"]} == linear_weights
    assert all(p.dim() == 2 for p in decay["params"])
    undecayed = {id(p) for p in no_decay["params"]}
    for module in model.modules():
        if isinstance(module, (nn.LayerNorm, nn.Embedding)):
            assert all(id(p) in undecayed for p in module.parameters())
        if isinstance(module, nn.Linear) and module.bias is not None:
            assert id(module.bias) in undecayed
    assert id(model.wte.weight) in undecayed  # the tied head with it
    torch.optim.AdamW(model.param_groups(1e-3, 0.1))  # AdamW accepts them as they are


def test_n_params():
    learned, rotary = _model("learned"), _model("rotary")
    tables = VOCAB * 32 + 32 * 32  # token and position embeddings
    assert learned.n_params(non_embedding=False) == sum(p.numel() for p in learned.parameters())
    assert learned.n_params() == learned.n_params(non_embedding=False) - tables
    assert rotary.n_params() == learned.n_params()  # rotary adds no parameters
    assert rotary.n_params(non_embedding=False) == learned.n_params(non_embedding=False) - 32 * 32


@pytest.mark.parametrize("positions", POSITIONS)
def test_overfits_a_repeated_string_and_greedy_decoding_continues_it(positions):
    text = "hello ladder! " * 4
    chars = sorted(set(text))
    ids = torch.tensor([chars.index(c) for c in text])
    block = TINY["block_size"]
    # one window per phase of the 14-character period; the target is the window shifted by one
    x = torch.stack([ids[s : s + block] for s in range(14)])  # (14, block)
    y = torch.stack([ids[s + 1 : s + block + 1] for s in range(14)])
    torch.manual_seed(0)
    model = build_gpt(GPTConfig(**TINY, positions=positions), VOCAB)
    optimizer = torch.optim.AdamW(model.param_groups(lr=3e-3, weight_decay=0.0))
    for _ in range(150):
        logits, _ = model(x)
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    # the first characters of each window are ambiguous ('l' precedes 'l', 'o' and 'a'),
    # which leaves a floor of about 0.02
    assert loss.item() < 0.1
    prompt = [chars.index(c) for c in "hello"]
    new = generate_ids(model, prompt, max_new_tokens=40, temperature=0)
    assert "".join(chars[i] for i in new) == " ladder! hello ladder! hello ladder! hel"

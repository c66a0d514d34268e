"""The Transformer encoder-decoder: config, the reused blocks, shapes, padding invariance,
step-by-step decoding equal to teacher forcing, shared and tied embeddings, length limits,
parameter groups, and that it learns to copy a sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from ladder.config import OptimizerConfig
from ladder.data.special_ids import BOS_ID, EOS_ID, PAD_ID
from ladder.models import gpt, transformer
from ladder.models.seq2seq_transformer import (
    Seq2SeqTransformerConfig,
    build_seq2seq_transformer,
)
from ladder.train.optim import build_optimizer

TINY = {"d_model": 16, "n_head": 2, "n_encoder_layers": 2, "n_decoder_layers": 2, "dropout": 0.0}
VOCAB = 11
POSITIONS = ["learned", "sinusoidal"]


def _model(source_vocab=VOCAB, target_vocab=VOCAB, **changes):
    torch.manual_seed(0)
    config = Seq2SeqTransformerConfig(**{**TINY, **changes})
    return build_seq2seq_transformer(config, source_vocab, target_vocab)


def _pair_batch(sources, targets, width=None):
    """(batch, 2, L): sources, then [bos] + targets, right-padded; and y = target + [eos]."""
    width = width or max(max(map(len, sources)), max(map(len, targets)) + 1)
    x = torch.full((len(sources), 2, width), PAD_ID)
    y = torch.full((len(sources), width), -100)
    for i, (source, target) in enumerate(zip(sources, targets, strict=True)):
        x[i, 0, : len(source)] = torch.tensor(source)
        x[i, 1, : len(target) + 1] = torch.tensor([BOS_ID, *target])
        y[i, : len(target) + 1] = torch.tensor([*target, EOS_ID])
    return x, y


SOURCES = [[3, 4, 5, 6, 7], [8, 9], [10, 3, 4]]
TARGETS = [[5, 6, 7, 8], [9, 10, 3, 4, 5, 6], [10]]


def test_defaults_and_validation():
    config = Seq2SeqTransformerConfig()
    assert (config.d_model, config.n_head, config.dropout) == (128, 4, 0.1)
    assert (config.n_encoder_layers, config.n_decoder_layers) == (2, 2)
    assert (config.positions, config.shared_vocab, config.tie_embeddings) == ("learned", True, True)
    assert (config.max_source_length, config.max_target_length) == (128, 128)
    with pytest.raises(ValidationError) as error:
        Seq2SeqTransformerConfig(d_model=30, n_head=4)
    (problem,) = error.value.errors()
    assert problem["loc"] == ("n_head",)
    assert "must divide d_model=30" in problem["msg"]
    for bad in ({"positions": "rotary"}, {"dropout": 1.0}, {"vocab_size": 9}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            Seq2SeqTransformerConfig(**bad)


def test_reuses_the_text_transformer_and_gpt_blocks():
    model = _model()
    assert all(isinstance(block, transformer.Block) for block in model.encoder)
    assert isinstance(model.source_positions, transformer.PositionalEncoding)
    for block in model.decoder:
        assert isinstance(block.attn, gpt.CausalSelfAttention)
        assert isinstance(block.mlp, gpt.MLP)


@pytest.mark.parametrize("positions", POSITIONS)
def test_shapes_and_state_layout(positions):
    model = _model(positions=positions).eval()
    assert (model.pad_id, model.bos_id, model.eos_id) == (PAD_ID, BOS_ID, EOS_ID)
    assert (model.source_vocab_size, model.vocab_size) == (VOCAB, VOCAB)
    x, _ = _pair_batch(SOURCES, TARGETS, width=9)
    assert model(x).shape == (3, 9, VOCAB)
    src = x[:, 0, :5]
    mask = src != PAD_ID
    memory = model.encode(src, mask)
    assert [m.shape for m in memory] == [(3, 2, 5, 8)] * 4  # k, v per decoder layer
    past = model.initial_past(memory, mask)
    assert [p.shape for p in past] == [(3, 2, 0, 8)] * 4  # nothing read yet
    for t in range(3):
        logits, past = model.step(x[:, 1, t : t + 1], memory, mask, past, t)
        assert logits.shape == (3, VOCAB)
        assert [p.shape for p in past] == [(3, 2, t + 1, 8)] * 4


@pytest.mark.parametrize("positions", POSITIONS)
def test_padding_changes_nothing(positions):
    model = _model(positions=positions).eval()
    x, _ = _pair_batch(SOURCES, TARGETS)
    together = model(x)
    for i, (source, target) in enumerate(zip(SOURCES, TARGETS, strict=True)):
        alone = model(_pair_batch([source], [target])[0])[0]
        n = len(target) + 1
        torch.testing.assert_close(together[i, :n], alone[:n], rtol=0, atol=1e-5)
    wider = model(_pair_batch(SOURCES, TARGETS, width=12)[0])
    torch.testing.assert_close(wider[:, : together.shape[1]], together, rtol=0, atol=1e-5)
    assert torch.all(wider[:, together.shape[1] :] == 0)  # past every row: zeros, ignored


@pytest.mark.parametrize("positions", POSITIONS)
@pytest.mark.parametrize("tie_embeddings", [True, False])
def test_step_by_step_decoding_equals_teacher_forcing(positions, tie_embeddings):
    model = _model(positions=positions, tie_embeddings=tie_embeddings).eval()
    x, _ = _pair_batch(SOURCES, TARGETS)
    forced = model(x)
    src = x[:, 0]
    mask = src != PAD_ID
    with torch.no_grad():
        memory = model.encode(src, mask)
        past = model.initial_past(memory, mask)
        steps = []
        for t in range(x.shape[2]):
            position = t if t % 2 else torch.full((3,), t)  # an int or a (batch,) tensor
            logits, past = model.step(x[:, 1, t : t + 1], memory, mask, past, position)
            steps.append(logits)
    stepped = torch.stack(steps, dim=1)
    for i, target in enumerate(TARGETS):  # positions up to each row's eos
        n = len(target) + 1
        assert (stepped[i, :n] - forced[i, :n]).abs().max() < 1e-4


def test_shared_and_tied_embeddings_are_one_parameter():
    model = _model()
    assert model.source_embedding.weight is model.target_embedding.weight
    assert model.head.weight is model.target_embedding.weight
    names = [name for name, _ in model.named_parameters()]
    assert "head.weight" not in names and "target_embedding.weight" not in names
    separate = _model(VOCAB, 13, shared_vocab=False)
    assert separate.source_embedding.weight is not separate.target_embedding.weight
    assert separate.head.weight is separate.target_embedding.weight
    assert separate(_pair_batch(SOURCES, TARGETS)[0]).shape[-1] == 13
    untied = _model(tie_embeddings=False)
    assert untied.head.weight is not untied.target_embedding.weight
    unequal = r"shared_vocab.*source vocab_size 11 and target vocab_size 13"
    with pytest.raises(ValueError, match=unequal):
        _model(VOCAB, 13)
    with pytest.raises(ValueError, match="source vocab_size must exceed"):
        _model(2, 2)


def test_too_long_inputs_are_refused():
    model = _model(max_source_length=4, max_target_length=5).eval()
    with pytest.raises(ValueError, match=r"source of 5 tokens .* max_source_length=4"):
        model(_pair_batch([[3, 4, 5, 6, 7]], [[3]])[0])
    with pytest.raises(
        ValueError, match=r"\(\[bos\] \+ target\) of 6 tokens .* max_target_length=5"
    ):
        model(_pair_batch([[3]], [[3, 4, 5, 6, 7]])[0])
    # padding beyond the position tables is fine: only real tokens count
    assert model(_pair_batch([[3, 4, 5, 6]], [[5, 6, 7, 8]], width=9)[0]).shape == (1, 9, VOCAB)
    src = torch.tensor([[3, 4, 5, 6, 7]])
    with pytest.raises(ValueError, match="source of 5 tokens"):
        model.encode(src, src != PAD_ID)
    memory = model.encode(src[:, :4], src[:, :4] != PAD_ID)
    past = model.initial_past(memory, src[:, :4] != PAD_ID)
    with pytest.raises(ValueError, match=r"position 5 .*\(max_target_length=5\)"):
        model.step(torch.tensor([[BOS_ID]]), memory, src[:, :4] != PAD_ID, past, 5)
    with pytest.raises(ValueError, match=r"x must be \(batch, 2, length\)"):
        model(torch.zeros(3, 4, dtype=torch.long))


def test_an_empty_source_gives_finite_logits():
    model = _model().eval()
    x, _ = _pair_batch([[], [3, 4]], [[5], [6]])
    assert torch.isfinite(model(x)).all()


def test_param_groups_decay_only_linear_matrices():
    model = _model()
    decay, rest = model.param_groups(lr=1e-3, weight_decay=0.1)
    assert (decay["weight_decay"], rest["weight_decay"]) == (0.1, 0.0)
    grouped = [id(p) for p in decay["params"] + rest["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters())  # each exactly once
    linear = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
    assert {id(p) for p in decay["params"]} == linear - {id(model.head.weight)}
    assert id(model.target_embedding.weight) in {id(p) for p in rest["params"]}
    optimizer = build_optimizer(model, OptimizerConfig(name="adamw", lr=1e-3, weight_decay=0.1))
    assert [g["weight_decay"] for g in optimizer.param_groups] == [0.1, 0.0]


def _copy_batch(generator, n=32):
    lengths = torch.randint(2, 7, (n,), generator=generator).tolist()
    sources = [torch.randint(3, VOCAB, (k,), generator=generator).tolist() for k in lengths]
    return _pair_batch(sources, sources)


def test_learns_to_copy():
    model = _model(d_model=32, n_encoder_layers=1, n_decoder_layers=1).train()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(400):
        x, y = _copy_batch(generator)
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y = _copy_batch(torch.Generator().manual_seed(1), n=64)  # unseen sequences
    with torch.no_grad():
        loss = F.cross_entropy(model(x).reshape(-1, VOCAB), y.reshape(-1))
    assert loss.item() < 0.1  # about 2.4 (uniform over 11 ids) before training

"""The recurrent encoder-decoder: config, shapes, padding invariance, step-by-step decoding
equal to teacher forcing, the shared embedding, length limits, scheduled sampling, and that
it learns to reverse a sequence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from ladder.data.special_ids import BOS_ID, EOS_ID, PAD_ID
from ladder.models.seq2seq_rnn import Seq2SeqRNNConfig, build_seq2seq_rnn

TINY = {"embedding_dim": 8, "hidden_size": 12, "num_layers": 2, "dropout": 0.0}
SOURCE_VOCAB, TARGET_VOCAB = 11, 13
CELLS = ["gru", "lstm"]
ATTENTIONS = ["bahdanau", "luong", "none"]


def _model(source_vocab=SOURCE_VOCAB, target_vocab=TARGET_VOCAB, **changes):
    torch.manual_seed(0)
    return build_seq2seq_rnn(Seq2SeqRNNConfig(**{**TINY, **changes}), source_vocab, target_vocab)


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
TARGETS = [[5, 6, 7, 8], [9, 10, 11, 12, 3, 4], [12]]


def test_defaults_and_validation():
    config = Seq2SeqRNNConfig()
    assert (config.cell, config.embedding_dim, config.hidden_size) == ("gru", 128, 256)
    assert (config.num_layers, config.bidirectional, config.attention) == (1, True, "bahdanau")
    assert (config.dropout, config.teacher_forcing, config.shared_vocab) == (0.1, 1.0, False)
    assert (config.max_source_length, config.max_target_length) == (128, 128)
    for bad in ({"teacher_forcing": 1.5}, {"cell": "rnn"}, {"attention": "dot"}, {"vocab": 9}):
        with pytest.raises(ValidationError, match=next(iter(bad))):
            Seq2SeqRNNConfig(**bad)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_shapes_and_state_layout(cell, attention):
    model = _model(cell=cell, attention=attention).eval()
    assert (model.pad_id, model.bos_id, model.eos_id) == (PAD_ID, BOS_ID, EOS_ID)
    assert (model.source_vocab_size, model.vocab_size) == (SOURCE_VOCAB, TARGET_VOCAB)
    x, _ = _pair_batch(SOURCES, TARGETS, width=9)
    assert model(x).shape == (3, 9, TARGET_VOCAB)
    src = x[:, 0, :5]
    outputs, keys, finals = model.encode(src, src != PAD_ID)
    assert outputs.shape == (3, 5, 24)  # two directions of 12
    assert keys.shape == ((3, 5, 24) if attention == "none" else (3, 5, 12))
    assert finals.shape == (3, 2, 24)  # (batch, layers, directions x hidden)
    past = model.initial_past((outputs, keys, finals), src != PAD_ID)
    assert [p.shape for p in past] == [(3, 2, 12)] * (2 if cell == "lstm" else 1)
    logits, present = model.step(x[:, 1, :1], (outputs, keys, finals), src != PAD_ID, past, 0)
    assert logits.shape == (3, TARGET_VOCAB)
    assert [p.shape for p in present] == [p.shape for p in past]


@pytest.mark.parametrize("cell", CELLS)
def test_padding_changes_nothing(cell):
    model = _model(cell=cell).eval()
    x, _ = _pair_batch(SOURCES, TARGETS)
    together = model(x)
    for i, (source, target) in enumerate(zip(SOURCES, TARGETS, strict=True)):
        alone = model(_pair_batch([source], [target])[0])[0]
        n = len(target) + 1
        torch.testing.assert_close(together[i, :n], alone[:n], rtol=0, atol=1e-5)
    wider = model(_pair_batch(SOURCES, TARGETS, width=12)[0])
    torch.testing.assert_close(wider[:, : together.shape[1]], together, rtol=0, atol=1e-5)
    assert torch.all(wider[:, together.shape[1] :] == 0)  # past every row: zeros, ignored


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("attention", ATTENTIONS)
def test_step_by_step_decoding_equals_teacher_forcing(cell, attention):
    model = _model(cell=cell, attention=attention, bidirectional=cell == "gru").eval()
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


def test_shared_vocab_shares_one_embedding_and_needs_equal_sizes():
    shared = _model(SOURCE_VOCAB, SOURCE_VOCAB, shared_vocab=True)
    assert shared.source_embedding.weight is shared.target_embedding.weight
    names = [name for name, _ in shared.named_parameters()]
    assert "target_embedding.weight" not in names  # one table, counted once
    separate = _model()
    assert separate.source_embedding.weight is not separate.target_embedding.weight
    unequal = r"shared_vocab.*source vocab_size 11 and target vocab_size 13"
    with pytest.raises(ValueError, match=unequal):
        _model(shared_vocab=True)
    with pytest.raises(ValueError, match="target vocab_size must exceed"):
        _model(SOURCE_VOCAB, 2)


def test_too_long_inputs_are_refused():
    model = _model(max_source_length=4, max_target_length=5).eval()
    with pytest.raises(ValueError, match=r"source of 5 tokens .* max_source_length=4"):
        model(_pair_batch([[3, 4, 5, 6, 7]], [[3]])[0])
    with pytest.raises(
        ValueError, match=r"\(\[bos\] \+ target\) of 6 tokens .* max_target_length=5"
    ):
        model(_pair_batch([[3]], [[3, 4, 5, 6, 7]])[0])
    # padding beyond the limits is fine: only real tokens count
    assert model(_pair_batch([[3, 4]], [[5]], width=9)[0]).shape == (1, 9, TARGET_VOCAB)
    src = torch.tensor([[3, 4, 5, 6, 7]])
    with pytest.raises(ValueError, match="source of 5 tokens"):
        model.encode(src, src != PAD_ID)
    memory = model.encode(src[:, :4], src[:, :4] != PAD_ID)
    past = model.initial_past(memory, src[:, :4] != PAD_ID)
    with pytest.raises(ValueError, match=r"position 5 .*\(max_target_length=5\)"):
        model.step(torch.tensor([[BOS_ID]]), memory, src[:, :4] != PAD_ID, past, 5)
    with pytest.raises(ValueError, match=r"x must be \(batch, 2, length\)"):
        model(torch.zeros(2, 3, 4, dtype=torch.long))


@pytest.mark.parametrize("attention", ["bahdanau", "luong"])
def test_scheduled_sampling_only_in_training(attention):
    sampled = _model(attention=attention, teacher_forcing=0.0)
    forced = _model(attention=attention)
    forced.load_state_dict(sampled.state_dict())
    x, y = _pair_batch(SOURCES, TARGETS)
    sampled.eval(), forced.eval()
    torch.testing.assert_close(sampled(x), forced(x), rtol=0, atol=0)
    sampled.train(), forced.train()
    # the untrained decoder's own guesses are not the targets: other inputs, other logits
    assert not torch.allclose(sampled(x), forced(x))
    half = _model(attention=attention, teacher_forcing=0.5).train()
    logits = half(x)
    F.cross_entropy(logits.reshape(-1, TARGET_VOCAB), y.reshape(-1)).backward()
    assert half.source_embedding.weight.grad is not None


def _reversal_batch(generator, n=32):
    lengths = torch.randint(2, 7, (n,), generator=generator).tolist()
    sources = [torch.randint(3, SOURCE_VOCAB, (k,), generator=generator).tolist() for k in lengths]
    return _pair_batch(sources, [s[::-1] for s in sources])


@pytest.mark.parametrize(("cell", "attention"), [("gru", "bahdanau"), ("lstm", "luong")])
def test_learns_to_reverse(cell, attention):
    model = _model(
        SOURCE_VOCAB,
        SOURCE_VOCAB,
        cell=cell,
        attention=attention,
        embedding_dim=16,
        hidden_size=32,
        num_layers=1,
    )
    model.train()
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(250):
        x, y = _reversal_batch(generator)
        loss = F.cross_entropy(model(x).reshape(-1, SOURCE_VOCAB), y.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    x, y = _reversal_batch(torch.Generator().manual_seed(1), n=64)  # unseen sequences
    with torch.no_grad():
        loss = F.cross_entropy(model(x).reshape(-1, SOURCE_VOCAB), y.reshape(-1))
    assert loss.item() < 0.05  # about 2.4 (uniform over 11 ids) before training

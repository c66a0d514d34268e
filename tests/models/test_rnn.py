"""Recurrent classifier: config validation, shapes, pooling, padding invariance, learnability."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from text_helpers import pad_more, random_ids, token_task, training_accuracy
from torch import nn

from ladder.errors import LadderError
from ladder.models.rnn import SPEC, RNNConfig, build_rnn
from ladder.models.sequence import PAD_ID

VOCAB = 30
CELLS = ["rnn", "gru", "lstm"]
POOLINGS = ["last", "mean", "max"]


def _ids(row_lengths: list[int], seed: int = 0) -> torch.Tensor:
    return random_ids(row_lengths, VOCAB, seed)


def _small(**params) -> RNNConfig:
    return RNNConfig(embedding_dim=8, hidden=6, **params)


def test_defaults_and_spec():
    config = RNNConfig()
    assert (config.cell, config.embedding_dim, config.hidden, config.layers) == (
        "lstm",
        128,
        128,
        1,
    )
    assert (config.bidirectional, config.dropout, config.pooling) == (True, 0.3, "max")
    assert (SPEC.type, SPEC.family, SPEC.config_cls, SPEC.inputs) == (
        "rnn",
        "neural",
        RNNConfig,
        ("text",),
    )
    assert SPEC.build is build_rnn
    assert SPEC.summary and "\n" not in SPEC.summary


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("layers", [1, 2])
def test_logits_shape(cell, bidirectional, layers):
    model = build_rnn(_small(cell=cell, bidirectional=bidirectional, layers=layers), (16, VOCAB), 3)
    assert model(_ids([5, 9, 1, 16])).shape == (4, 3)
    directions = 2 if bidirectional else 1
    assert model.head.in_features == 6 * directions


def test_layers_follow_the_config():
    model = build_rnn(_small(cell="gru", layers=2, dropout=0.2), (10, 50), 4)
    assert isinstance(model.rnn, nn.GRU)
    assert (model.rnn.num_layers, model.rnn.dropout, model.rnn.bidirectional) == (2, 0.2, True)
    assert model.embedding.num_embeddings == 50
    assert model.embedding.padding_idx == PAD_ID
    assert torch.equal(model.embedding.weight[PAD_ID], torch.zeros(8))
    # one layer: no inter-layer dropout (torch would warn), the head's dropout stays
    single = build_rnn(_small(layers=1, dropout=0.2), (10, 50), 4)
    assert single.rnn.dropout == 0.0
    assert single.drop.p == 0.2


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_extra_right_padding_does_not_change_the_logits(cell, pooling):
    torch.manual_seed(0)
    model = build_rnn(_small(cell=cell, pooling=pooling), (40, VOCAB), 3).eval()
    ids = _ids([1, 3, 7, 12])
    expected = model(ids)
    for extra in (1, 4):
        assert torch.allclose(model(pad_more(ids, extra)), expected, atol=1e-5)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_two_layer_unidirectional_is_padding_invariant_too(pooling):
    torch.manual_seed(0)
    model = build_rnn(_small(layers=2, bidirectional=False, pooling=pooling), (40, VOCAB), 2)
    model.eval()
    ids = _ids([2, 9])
    assert torch.allclose(model(pad_more(ids, 6)), model(ids), atol=1e-5)


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("pooling", POOLINGS)
def test_pooling_reads_only_the_real_tokens(cell, pooling):
    """Each row's pooled vector equals the one from running the RNN on that row alone."""
    torch.manual_seed(0)
    model = build_rnn(_small(cell=cell, pooling=pooling), (20, VOCAB), 2).eval()
    model.head = nn.Identity()  # expose the pooled features (dropout is off in eval)
    ids = _ids([4, 1, 9])
    pooled = model(ids)  # (batch, 2 * hidden)
    for row, n in enumerate([4, 1, 9]):
        with torch.no_grad():
            out, _ = model.rnn(model.embedding(ids[row : row + 1, :n]))  # (1, n, 2 * hidden)
        out = out[0]
        if pooling == "last":  # forward at the last token, backward at the first
            expected = torch.cat([out[n - 1, :6], out[0, 6:]])
        elif pooling == "mean":
            expected = out.mean(dim=0)
        else:
            expected = out.max(dim=0).values
        assert torch.allclose(pooled[row], expected, atol=1e-5)


def test_gradients_reach_the_embedding():
    model = build_rnn(_small(), (20, VOCAB), 2)
    model(_ids([3, 8])).sum().backward()
    grad = model.embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert torch.equal(grad[PAD_ID], torch.zeros(8))  # padding_idx is never updated


@pytest.mark.parametrize("pooling", ["last", "max"])
def test_learns_whether_a_token_appears(pooling):
    torch.manual_seed(0)
    seq = 10
    ids, labels = token_task(128, seq, VOCAB)
    config = RNNConfig(embedding_dim=16, hidden=16, dropout=0.1, pooling=pooling)
    model = build_rnn(config, (seq, VOCAB), 2)
    accuracy = training_accuracy(model, ids, labels)
    assert accuracy >= 0.95


@pytest.mark.parametrize(
    "params",
    [
        {"cell": "transformer"},
        {"pooling": "attention"},
        {"hidden": 0},
        {"layers": 0},
        {"embedding_dim": -1},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"num_layers": 2},
    ],
)
def test_invalid_configs(params):
    with pytest.raises(ValidationError):
        RNNConfig(**params)


def test_non_text_input_shape_is_rejected():
    with pytest.raises(LadderError, match="rnn needs text data"):
        build_rnn(RNNConfig(), (12,), 2)

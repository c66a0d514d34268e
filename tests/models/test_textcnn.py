"""TextCNN: config validation, shapes, padding invariance, gradients and learnability."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError
from text_helpers import pad_more, random_ids, token_task, training_accuracy
from torch import nn

from ladder.errors import LadderError
from ladder.models.sequence import PAD_ID
from ladder.models.textcnn import SPEC, TextCNNConfig, build_textcnn

VOCAB = 30


def _ids(row_lengths: list[int], seed: int = 0) -> torch.Tensor:
    return random_ids(row_lengths, VOCAB, seed)


def test_defaults_and_spec():
    config = TextCNNConfig()
    assert (config.embedding_dim, config.widths, config.filters, config.dropout) == (
        128,
        [3, 4, 5],
        100,
        0.5,
    )
    assert (SPEC.type, SPEC.family, SPEC.config_cls, SPEC.inputs) == (
        "textcnn",
        "neural",
        TextCNNConfig,
        ("text",),
    )
    assert SPEC.build is build_textcnn
    assert SPEC.summary and "\n" not in SPEC.summary


@pytest.mark.parametrize(
    ("params", "n_classes"),
    [({}, 2), ({"widths": [2], "filters": 3, "embedding_dim": 8}, 5), ({"widths": [1, 7]}, 3)],
)
def test_logits_shape(params, n_classes):
    model = build_textcnn(TextCNNConfig(**params), (16, VOCAB), n_classes)
    assert model(_ids([5, 9, 2, 16])).shape == (4, n_classes)


def test_layers_follow_the_config():
    model = build_textcnn(TextCNNConfig(embedding_dim=12, widths=[2, 3], filters=7), (10, 50), 4)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv1d)]
    assert [c.kernel_size[0] for c in convs] == [2, 3]
    assert all((c.in_channels, c.out_channels) == (12, 7) for c in convs)
    assert model.embedding.num_embeddings == 50
    assert model.embedding.padding_idx == PAD_ID
    assert torch.equal(model.embedding.weight[PAD_ID], torch.zeros(12))
    assert (model.head.in_features, model.head.out_features) == (14, 4)


@pytest.mark.parametrize("widths", [[1], [3, 4, 5], [2, 7]])
def test_extra_right_padding_does_not_change_the_logits(widths):
    torch.manual_seed(0)
    model = build_textcnn(TextCNNConfig(embedding_dim=8, widths=widths, filters=6), (40, VOCAB), 3)
    model.eval()
    # rows shorter than the widest filter, a single token, and a full row
    ids = _ids([1, 2, 4, 6, 11])
    expected = model(ids)
    for extra in (1, 3, 10):
        assert torch.allclose(model(pad_more(ids, extra)), expected, atol=1e-5)


def test_single_token_text_matches_alone_and_in_a_batch():
    torch.manual_seed(0)
    model = build_textcnn(TextCNNConfig(embedding_dim=8, filters=4), (20, VOCAB), 2).eval()
    ids = _ids([1, 12])
    assert torch.allclose(model(ids)[:1], model(ids[:1, :1]), atol=1e-5)


def test_padding_invariance_does_not_rely_on_a_zero_pad_vector():
    torch.manual_seed(0)
    model = build_textcnn(TextCNNConfig(embedding_dim=8, filters=4), (20, VOCAB), 2).eval()
    with torch.no_grad():
        model.embedding.weight[PAD_ID] = torch.randn(8)  # e.g. weights edited after training
    ids = _ids([2, 7])
    assert torch.allclose(model(pad_more(ids, 5)), model(ids), atol=1e-5)


def test_gradients_reach_the_embedding():
    model = build_textcnn(TextCNNConfig(embedding_dim=8, filters=4), (20, VOCAB), 2)
    model(_ids([3, 8])).sum().backward()
    grad = model.embedding.weight.grad
    assert grad is not None and grad.abs().sum() > 0
    assert torch.equal(grad[PAD_ID], torch.zeros(8))  # padding_idx is never updated


def test_learns_whether_a_token_appears():
    torch.manual_seed(0)
    seq = 10
    ids, labels = token_task(128, seq, VOCAB)
    model = build_textcnn(TextCNNConfig(embedding_dim=16, filters=8, dropout=0.1), (seq, VOCAB), 2)
    accuracy = training_accuracy(model, ids, labels)
    assert accuracy >= 0.95


@pytest.mark.parametrize(
    "params",
    [
        {"widths": []},
        {"widths": [0]},
        {"widths": [3, -1]},
        {"widths": [2.5]},
        {"filters": 0},
        {"embedding_dim": 0},
        {"dropout": 1.0},
        {"dropout": -0.1},
        {"kernel_sizes": [3]},
    ],
)
def test_invalid_configs(params):
    with pytest.raises(ValidationError):
        TextCNNConfig(**params)


def test_non_text_input_shape_is_rejected():
    with pytest.raises(LadderError, match="textcnn needs text data"):
        build_textcnn(TextCNNConfig(), (3, 32, 32), 10)

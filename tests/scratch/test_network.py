"""Sequential against torch.nn.Sequential: outputs, gradients, names; central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ladder.errors import LadderError
from ladder.scratch.activations import ReLU, Tanh
from ladder.scratch.dense import Dense, Flatten
from ladder.scratch.dropout import Dropout
from ladder.scratch.embedding import Embedding
from ladder.scratch.gradcheck import numerical_gradient, relative_error
from ladder.scratch.lenet import LeNet5
from ladder.scratch.losses import softmax_cross_entropy
from ladder.scratch.mlp import mlp
from ladder.scratch.network import Sequential
from ladder.scratch.text_rnn import TextRNN


def test_matches_torch_sequential():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3)).double()
    net = Sequential(Flatten(), Dense(12, 5), ReLU(), Dense(5, 3))
    for name, array in net.parameters():
        array[...] = model.state_dict()[name].numpy()  # same names as torch's state dict
    assert [name for name, _ in net.parameters()] == list(model.state_dict())

    rng = np.random.default_rng(0)
    x, labels = rng.normal(size=(4, 3, 4)), rng.integers(0, 3, size=4)
    xt = torch.tensor(x, requires_grad=True)
    logits_t = model(xt)
    torch.nn.functional.cross_entropy(logits_t, torch.tensor(labels)).backward()

    logits = net.forward(x, training=True)
    assert relative_error(logits, logits_t.detach().numpy()) <= 1e-10
    _, dlogits = softmax_cross_entropy(logits, labels)
    dx = net.backward(dlogits)
    assert relative_error(dx, xt.grad.numpy()) <= 1e-8
    grads = dict(model.named_parameters())
    assert [name for name, _ in net.gradients()] == list(grads)
    for name, g in net.gradients():
        assert relative_error(g, grads[name].grad.numpy()) <= 1e-8


def test_numerical_gradient_through_the_network():
    rng = np.random.default_rng(1)
    net = Sequential(Dense(3, 4, rng=rng), Tanh(), Dense(4, 2, rng=rng))
    x, labels = rng.normal(size=(2, 3)), np.array([1, 0])

    def loss() -> float:
        return softmax_cross_entropy(net.forward(x), labels)[0]

    _, dlogits = softmax_cross_entropy(net.forward(x), labels)
    dx = net.backward(dlogits)
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for (name, p), (_, g) in zip(net.parameters(), net.gradients(), strict=True):
        assert relative_error(g, numerical_gradient(loss, p)) <= 1e-6, name


def test_embedding_first_returns_none_and_nesting_names():
    rng = np.random.default_rng(2)
    inner = Sequential(Dense(4, 4, rng=rng), ReLU())
    net = Sequential(Embedding(6, 4, rng=rng), inner, Dense(4, 2, bias=False, rng=rng))
    assert [name for name, _ in net.parameters()] == [
        "0.weight",
        "1.0.weight",
        "1.0.bias",
        "2.weight",
    ]
    y = net.forward(np.array([[1, 2, 5]]))
    assert y.shape == (1, 3, 2)
    assert net.backward(np.ones_like(y)) is None
    assert [name for name, _ in net.gradients()] == [name for name, _ in net.parameters()]
    assert len(net) == 3 and net[1] is inner


def test_training_flag_reaches_dropout():
    net = Sequential(Dropout(0.5, rng=np.random.default_rng(3)))
    x = np.ones((10, 10))
    assert net.forward(x) is x
    assert (net.forward(x, training=True) == 0).any()


def test_parameters_are_the_layers_arrays():
    dense = Dense(2, 2)
    net = Sequential(dense)
    assert net.parameters()[0][1] is dense.params["weight"]
    dense.params["weight"] = np.zeros((2, 2))  # replaced from outside: seen at the next call
    assert net.parameters()[0][1] is dense.params["weight"]


def test_errors():
    with pytest.raises(LadderError, match="Sequential: layer 1 is a int, not a scratch Layer"):
        Sequential(ReLU(), 3)
    with pytest.raises(LadderError, match=r"Dense has no gradient for .*run backward first"):
        Sequential(Dense(2, 2)).gradients()
    net = Sequential(ReLU(), Embedding(4, 2))  # ReLU passes int ids through
    y = net.forward(np.array([[1, 3]]))
    with pytest.raises(LadderError, match=r"layer 1 \(Embedding\) returns no input gradient"):
        net.backward(np.ones_like(y))


@pytest.mark.parametrize("build", ["mlp", "lenet", "text_rnn"])
def test_one_seed_fixes_the_weights_and_the_dropout_masks(build):
    def make(seed):
        rng = np.random.default_rng(seed)
        if build == "mlp":
            return mlp(16, [8], 3, dropout=0.5, rng=rng), rng.random((4, 16))
        if build == "lenet":
            return LeNet5(1, 16, 16, 3, dropout=0.5, rng=rng), rng.random((2, 1, 16, 16))
        net = TextRNN(20, 3, embedding_dim=8, hidden=6, layers=2, dropout=0.5, rng=rng)
        return net, rng.integers(1, 20, (2, 5))

    (a, xa), (b, xb), (c, xc) = make(0), make(0), make(1)
    assert np.array_equal(a.forward(xa, training=True), b.forward(xb, training=True))
    assert not np.array_equal(a.forward(xa, training=True), c.forward(xc, training=True))

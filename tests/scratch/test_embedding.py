"""Embedding against torch.nn.Embedding(padding_idx=0), central differences and bad ids."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ladder.errors import LadderError
from ladder.scratch.embedding import Embedding
from ladder.scratch.gradcheck import numerical_gradient, relative_error


def test_matches_torch_embedding_with_padding():
    torch.manual_seed(0)
    module = nn.Embedding(7, 3, padding_idx=0).double()
    layer = Embedding(7, 3, padding_idx=0)
    layer.params["weight"] = module.weight.detach().numpy().copy()
    ids = np.array([[1, 2, 2, 0], [6, 1, 0, 0]])  # repeats and padding
    dout = np.random.default_rng(0).normal(size=(2, 4, 3))
    out = module(torch.tensor(ids))
    out.backward(torch.tensor(dout))
    assert relative_error(layer.forward(ids), out.detach().numpy()) <= 1e-10
    assert layer.backward(dout) is None
    assert relative_error(layer.grads["weight"], module.weight.grad.numpy()) <= 1e-8
    np.testing.assert_array_equal(layer.grads["weight"][0], 0.0)
    np.testing.assert_array_equal(layer.grads["weight"][[3, 4, 5]], 0.0)


def test_numerical_gradient():
    layer = Embedding(5, 2, padding_idx=4, rng=np.random.default_rng(1))
    ids = np.array([[0, 3, 3], [4, 1, 0]])
    g = np.random.default_rng(2).normal(size=(2, 3, 2))
    layer.forward(ids)
    layer.backward(g)
    numeric = numerical_gradient(
        lambda: float((layer.forward(ids) * g).sum()), layer.params["weight"]
    )
    numeric[4] = 0.0  # the pad row is frozen by definition, though the output reads it
    assert relative_error(layer.grads["weight"], numeric) <= 1e-6


def test_initial_table_and_negative_padding_idx():
    layer = Embedding(1000, 50, padding_idx=-1, rng=np.random.default_rng(3))
    assert layer.padding_idx == 999
    np.testing.assert_array_equal(layer.params["weight"][999], 0.0)
    assert abs(layer.params["weight"][:999].std() - 1) < 0.02  # N(0, 1) as torch
    np.testing.assert_array_equal(
        Embedding(4, 2, rng=np.random.default_rng(5)).params["weight"],
        Embedding(4, 2, rng=np.random.default_rng(5)).params["weight"],
    )


def test_any_id_shape_and_float32_table():
    layer = Embedding(4, 2)
    layer.params["weight"] = layer.params["weight"].astype(np.float32)
    out = layer.forward(np.array([3, 1, 2]))
    assert out.shape == (3, 2) and out.dtype == np.float32
    layer.backward(np.ones((3, 2), dtype=np.float32))
    assert layer.grads["weight"].dtype == np.float32


def test_bad_ids_and_shapes():
    layer = Embedding(5, 2)
    with pytest.raises(
        LadderError,
        match=r"Embedding\(vocab=5, dim=2\): id 7 is outside \[0, 5\) \(input shape \(1, 2\)\)",
    ):
        layer.forward(np.array([[1, 7]]))
    with pytest.raises(LadderError, match=r"id -1 is outside"):
        layer.forward(np.array([[-1, 2]]))
    with pytest.raises(
        LadderError, match=r"ids must be integers, got float64 \(input shape \(2,\)\)"
    ):
        layer.forward(np.array([1.0, 2.0]))
    with pytest.raises(LadderError, match=r"padding_idx 5 is outside \[-5, 5\)"):
        Embedding(5, 2, padding_idx=5)
    layer.forward(np.array([[1, 2]]))
    with pytest.raises(
        LadderError, match=r"gradient has shape \(1, 2, 3\), expected .* \(1, 2, 2\)"
    ):
        layer.backward(np.ones((1, 2, 3)))

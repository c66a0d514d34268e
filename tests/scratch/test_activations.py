"""The activations against torch autograd and central differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.scratch.activations import (
    ReLU,
    Sigmoid,
    Tanh,
    log_softmax,
    log_softmax_backward,
    relu,
    sigmoid,
    softmax,
    softmax_backward,
    tanh,
)
from ladder.scratch.gradcheck import numerical_gradient, relative_error

LAYERS = [(Sigmoid, torch.sigmoid), (Tanh, torch.tanh), (ReLU, torch.relu)]


def leaf(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


@pytest.mark.parametrize(("layer_type", "torch_fn"), LAYERS)
def test_layer_matches_torch_autograd(layer_type, torch_fn):
    rng = np.random.default_rng(0)
    x, dout = rng.normal(size=(4, 5, 3)), rng.normal(size=(4, 5, 3))
    layer = layer_type()
    y = layer.forward(x)
    xt = leaf(x)
    yt = torch_fn(xt)
    yt.backward(torch.tensor(dout))
    assert relative_error(y, yt.detach().numpy()) <= 1e-10
    assert relative_error(layer.backward(dout), xt.grad.numpy()) <= 1e-8
    assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize(("layer_type", "torch_fn"), LAYERS)
def test_layer_numerical_gradient(layer_type, torch_fn):
    rng = np.random.default_rng(1)
    x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    layer = layer_type()
    layer.forward(x)
    analytic = layer.backward(g)
    numeric = numerical_gradient(lambda: float((layer.forward(x) * g).sum()), x)
    assert relative_error(analytic, numeric) <= 1e-6


@pytest.mark.parametrize("fn", [sigmoid, tanh, relu])
def test_functions_keep_float32(fn):
    x = np.linspace(-3, 3, 7, dtype=np.float32)
    assert fn(x).dtype == np.float32
    assert Sigmoid().forward(x).dtype == ReLU().forward(x).dtype == np.float32


def test_sigmoid_does_not_overflow():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    assert relative_error(sigmoid(x), torch.sigmoid(torch.tensor(x)).numpy()) <= 1e-12


def test_relu_derivative_at_zero_is_zero_like_torch():
    layer = ReLU()
    layer.forward(np.array([-1.0, 0.0, 2.0]))
    np.testing.assert_array_equal(layer.backward(np.ones(3)), [0.0, 0.0, 1.0])


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax_match_torch(axis):
    z = np.random.default_rng(2).normal(size=(3, 4, 5)) * 5
    zt = torch.tensor(z)
    assert relative_error(softmax(z, axis), torch.softmax(zt, axis).numpy()) <= 1e-12
    assert relative_error(log_softmax(z, axis), torch.log_softmax(zt, axis).numpy()) <= 1e-12
    np.testing.assert_allclose(softmax(z, axis).sum(axis=axis), 1.0)


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -2000.0]])
    p, logp = softmax(z), log_softmax(z)
    assert np.isfinite(p).all() and np.isfinite(logp).all()
    assert relative_error(logp, torch.log_softmax(torch.tensor(z), -1).numpy()) <= 1e-12


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_backwards_match_torch_autograd(axis):
    rng = np.random.default_rng(3)
    z, g = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
    zt = leaf(z)
    torch.softmax(zt, axis).backward(torch.tensor(g))
    assert relative_error(softmax_backward(softmax(z, axis), g, axis), zt.grad.numpy()) <= 1e-8
    zt = leaf(z)
    torch.log_softmax(zt, axis).backward(torch.tensor(g))
    got = log_softmax_backward(log_softmax(z, axis), g, axis)
    assert relative_error(got, zt.grad.numpy()) <= 1e-8


def test_softmax_backward_is_the_jacobian_diag_p_minus_ppt():
    rng = np.random.default_rng(4)
    z, g = rng.normal(size=5), rng.normal(size=5)
    p = softmax(z)
    jacobian = np.diag(p) - np.outer(p, p)
    assert relative_error(softmax_backward(p, g), jacobian.T @ g) <= 1e-12
    numeric = numerical_gradient(lambda: float(softmax(z) @ g), z)
    assert relative_error(softmax_backward(p, g), numeric) <= 1e-6
    numeric = numerical_gradient(lambda: float(log_softmax(z) @ g), z)
    assert relative_error(log_softmax_backward(log_softmax(z), g), numeric) <= 1e-6

"""ladder.scratch.pooling: MaxPool2d and AvgPool2d against torch, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ladder.errors import LadderError
from ladder.scratch.gradcheck import numerical_gradient, relative_error
from ladder.scratch.pooling import AvgPool2d, MaxPool2d

CASES = [
    # (x shape, kernel, stride)
    ((2, 3, 6, 6), 2, None),
    ((2, 3, 7, 9), 2, None),  # odd sizes: the last row / column are dropped
    ((1, 2, 7, 8), 3, 2),  # overlapping windows
    ((2, 2, 9, 7), (3, 2), (2, 1)),  # rectangular window and stride
    ((1, 1, 5, 5), 5, None),  # one window covers the input
]

POOLS = [(MaxPool2d, F.max_pool2d), (AvgPool2d, F.avg_pool2d)]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("pool, reference", POOLS)
def test_forward_and_backward_match_torch(pool, reference, case):
    x_shape, kernel, stride = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape)
    layer = pool(kernel, stride)
    xt = torch.tensor(x, requires_grad=True)
    yt = reference(xt, kernel, stride)
    y = layer.forward(x)
    assert y.shape == tuple(yt.shape)
    assert relative_error(y, yt.detach().numpy()) <= 1e-10
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    assert relative_error(layer.backward(g), xt.grad.numpy()) <= 1e-8
    assert layer.params == {} and layer.grads == {}


@pytest.mark.parametrize("case", [CASES[1], CASES[2]])
@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_numerical_gradients(pool, case):
    x_shape, kernel, stride = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(x_shape)
    layer = pool(kernel, stride)
    g = rng.standard_normal(layer.forward(x).shape)

    def loss() -> float:
        return float((layer.forward(x) * g).sum())

    layer.forward(x)
    dx = layer.backward(g)
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6


def test_max_routes_to_the_maximum_only():
    x = np.array([[[[1.0, 5.0, 2.0], [3.0, 4.0, 9.0], [0.0, 0.0, 7.0]]]])
    layer = MaxPool2d(2, stride=1)
    assert np.array_equal(layer.forward(x), [[[[5.0, 9.0], [4.0, 9.0]]]])
    dx = layer.backward(np.ones((1, 1, 2, 2)))
    # 9 wins two windows and gets both gradients; the rest of the input gets none
    assert np.array_equal(dx, [[[[0.0, 1.0, 0.0], [0.0, 1.0, 2.0], [0.0, 0.0, 0.0]]]])


def test_float32_stays_float32():
    x = np.random.default_rng(2).standard_normal((2, 3, 6, 6)).astype(np.float32)
    for layer in (MaxPool2d(2), AvgPool2d(2)):
        y = layer.forward(x)
        assert y.dtype == layer.backward(np.ones_like(y)).dtype == np.float32


@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_bad_shapes_name_layer_and_shapes(pool):
    name = pool.__name__
    with pytest.raises(LadderError) as err:
        pool(2).forward(np.zeros((4, 3, 1, 5)))
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"{name}(kernel=2x2, stride=2x2): input is 1x5 with padding 0x0, smaller than the "
        "2x2 kernel (input shape (4, 3, 1, 5))"
    )
    with pytest.raises(LadderError, match=rf"^{name}\(kernel=3x3, stride=1x1\): .*4-D"):
        pool(3, 1).forward(np.zeros((3, 5, 5)))
    layer = pool(2)
    with pytest.raises(LadderError, match="before forward"):
        layer.backward(np.zeros((1, 1, 2, 2)))
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(LadderError, match=r"\(1, 1, 3, 3\).*expected.*\(1, 1, 2, 2\)"):
        layer.backward(np.zeros((1, 1, 3, 3)))

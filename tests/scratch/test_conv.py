"""ladder.scratch.conv: im2col/col2im and Conv2d against torch's conv2d, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ladder.errors import LadderError
from ladder.scratch.conv import Conv2d, col2im, im2col, window_output_shape
from ladder.scratch.gradcheck import numerical_gradient, relative_error

CASES = [
    # (x shape, out_ch, kernel, stride, padding, bias)
    ((2, 3, 7, 7), 4, 3, 1, 0, True),
    ((2, 3, 7, 9), 4, 3, 2, 1, True),  # non-square, strided, padded
    ((3, 2, 8, 5), 5, (3, 2), (2, 1), (1, 0), False),  # rectangular kernel, no bias
    ((1, 1, 6, 6), 2, 5, 1, 2, True),  # "same" padding
    ((2, 2, 9, 10), 3, 4, 3, 0, False),  # stride leaves rows and columns unused
    ((2, 1, 5, 5), 1, 5, 1, 0, True),  # kernel as large as the input: one output pixel
]


def _twin(x_shape, out_ch, kernel, stride, padding, bias, seed=0):
    """A NumPy Conv2d carrying a float64 torch Conv2d's weights, and that torch module."""
    torch.manual_seed(seed)
    tm = torch.nn.Conv2d(x_shape[1], out_ch, kernel, stride, padding, bias=bias).double()
    layer = Conv2d(x_shape[1], out_ch, kernel, stride, padding, bias=bias)
    for name, p in tm.named_parameters():
        layer.params[name] = p.detach().numpy().copy()
    return layer, tm


@pytest.mark.parametrize("case", CASES)
def test_forward_and_backward_match_torch(case):
    rng = np.random.default_rng(1)
    layer, tm = _twin(*case)
    x_shape = case[0]
    x = rng.standard_normal(x_shape)
    xt = torch.tensor(x, requires_grad=True)
    yt = tm(xt)
    y = layer.forward(x)
    assert y.shape == tuple(yt.shape)
    assert relative_error(y, yt.detach().numpy()) <= 1e-10
    g = rng.standard_normal(y.shape)
    yt.backward(torch.tensor(g))
    dx = layer.backward(g)
    assert relative_error(dx, xt.grad.numpy()) <= 1e-8
    assert set(layer.grads) == {name for name, _ in tm.named_parameters()}
    for name, p in tm.named_parameters():
        assert layer.grads[name].shape == p.shape
        assert relative_error(layer.grads[name], p.grad.numpy()) <= 1e-8


def test_matches_functional_conv2d():
    rng = np.random.default_rng(2)
    layer = Conv2d(2, 3, 3, stride=2, padding=1, rng=rng)
    x = rng.standard_normal((2, 2, 6, 5))
    ref = F.conv2d(
        torch.tensor(x),
        torch.tensor(layer.params["weight"]),
        torch.tensor(layer.params["bias"]),
        stride=2,
        padding=1,
    )
    assert relative_error(layer.forward(x), ref.numpy()) <= 1e-10


@pytest.mark.parametrize("case", [CASES[1], CASES[2]])
def test_numerical_gradients(case):
    x_shape, out_ch, kernel, stride, padding, bias = case
    rng = np.random.default_rng(3)
    layer = Conv2d(x_shape[1], out_ch, kernel, stride, padding, bias=bias, rng=rng)
    x = rng.standard_normal(x_shape)
    g = rng.standard_normal(layer.forward(x).shape)

    def loss() -> float:
        return float((layer.forward(x) * g).sum())

    layer.forward(x)
    dx = layer.backward(g)
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name, p in layer.params.items():
        assert relative_error(layer.grads[name], numerical_gradient(loss, p)) <= 1e-6


@pytest.mark.parametrize(
    "shape, kernel, stride, padding",
    [((2, 3, 6, 7), (3, 3), 1, 0), ((2, 2, 7, 6), (2, 3), 2, 1), ((1, 2, 9, 9), (3, 3), 3, 2)],
)
def test_col2im_is_the_adjoint_of_im2col(shape, kernel, stride, padding):
    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape)
    cols = im2col(x, *kernel, stride, padding)
    g = rng.standard_normal(cols.shape)
    lhs = float((col2im(g, shape, *kernel, stride, padding) * x).sum())
    rhs = float((g * cols).sum())
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(rhs))


def test_im2col_columns_are_the_windows():
    x = np.arange(2 * 2 * 4 * 5, dtype=np.float64).reshape(2, 2, 4, 5)
    cols = im2col(x, 2, 3, stride=(2, 1), padding=0)
    oh, ow = window_output_shape(x.shape, (2, 3), (2, 1))
    assert cols.shape == (2, 2 * 2 * 3, oh * ow) == (2, 12, 2 * 3)
    # the column of sample 1, output pixel (1, 2) is the window at rows 2..3, columns 2..4
    assert np.array_equal(cols[1, :, 1 * ow + 2], x[1, :, 2:4, 2:5].reshape(-1))
    # and it matches torch's unfold (same (c, i, j) row order)
    ref = F.unfold(torch.tensor(x), (2, 3), stride=(2, 1))
    assert np.array_equal(cols, ref.numpy())


def test_float32_stays_float32():
    rng = np.random.default_rng(5)
    layer = Conv2d(3, 4, 3, padding=1, rng=rng)
    layer.params = {k: v.astype(np.float32) for k, v in layer.params.items()}
    x = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    y = layer.forward(x)
    dx = layer.backward(np.ones_like(y))
    assert y.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_reads_params_replaced_between_calls():
    rng = np.random.default_rng(6)
    layer = Conv2d(1, 2, 3, rng=rng)
    x = rng.standard_normal((1, 1, 4, 4))
    new_weight = rng.standard_normal((2, 1, 3, 3))
    layer.params["weight"] = new_weight
    ref = F.conv2d(torch.tensor(x), torch.tensor(new_weight), torch.tensor(layer.params["bias"]))
    assert relative_error(layer.forward(x), ref.numpy()) <= 1e-10
    before = new_weight.copy()
    layer.backward(np.ones((1, 2, 2, 2)))
    assert np.array_equal(new_weight, before)  # params never modified in place


def test_default_init_bounds():
    layer = Conv2d(3, 8, 5, rng=np.random.default_rng(7))
    bound = 1 / np.sqrt(3 * 5 * 5)
    assert layer.params["weight"].shape == (8, 3, 5, 5)
    assert layer.params["bias"].shape == (8,)
    assert all(np.abs(p).max() <= bound for p in layer.params.values())
    assert "bias" not in Conv2d(3, 8, 5, bias=False).params


def test_wrong_channels_names_layer_and_shapes():
    layer = Conv2d(3, 6, 5)
    with pytest.raises(LadderError) as err:
        layer.forward(np.zeros((8, 4, 32, 32)))
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        "Conv2d(in=3, out=6, kernel=5x5, stride=1x1, padding=0x0): input has 4 channels, "
        "expected 3 (input shape (8, 4, 32, 32), weight shape (6, 3, 5, 5))"
    )


def test_input_smaller_than_kernel():
    with pytest.raises(LadderError) as err:
        Conv2d(1, 2, 5).forward(np.zeros((2, 1, 3, 3)))
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("Conv2d(in=1, out=2, kernel=5x5")
    assert "3x3" in message and "5x5 kernel" in message and "(2, 1, 3, 3)" in message
    # padding can make it fit
    assert Conv2d(1, 2, 5, padding=1).forward(np.zeros((2, 1, 3, 3))).shape == (2, 2, 1, 1)


def test_not_4d_input_and_wrong_output_gradient():
    layer = Conv2d(3, 2, 3)
    with pytest.raises(LadderError, match=r"Conv2d\(in=3.*4-D.*\(3, 5, 5\)"):
        layer.forward(np.zeros((3, 5, 5)))
    with pytest.raises(LadderError, match="before forward"):
        layer.backward(np.zeros((1, 2, 3, 3)))
    layer.forward(np.zeros((1, 3, 5, 5)))
    with pytest.raises(LadderError, match=r"\(1, 2, 4, 4\).*expected.*\(1, 2, 3, 3\)"):
        layer.backward(np.zeros((1, 2, 4, 4)))
    with pytest.raises(LadderError, match=r"^im2col: .*3x3 kernel"):
        im2col(np.zeros((1, 1, 2, 2)), 3, 3)

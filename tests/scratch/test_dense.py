"""Dense and Flatten against torch.nn.Linear / nn.Flatten, central differences and bad shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ladder.errors import LadderError
from ladder.scratch.dense import Dense, Flatten
from ladder.scratch.gradcheck import numerical_gradient, relative_error


def copy_linear(linear: nn.Linear, dense: Dense) -> None:
    for name, p in linear.named_parameters():
        dense.params[name] = p.detach().numpy().copy()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4)])
def test_dense_matches_torch_linear(bias, shape):
    torch.manual_seed(0)
    linear = nn.Linear(4, 3, bias=bias).double()
    dense = Dense(4, 3, bias=bias)
    copy_linear(linear, dense)
    rng = np.random.default_rng(0)
    x = rng.normal(size=shape)
    dout = rng.normal(size=(*shape[:-1], 3))
    xt = torch.tensor(x, requires_grad=True)
    yt = linear(xt)
    yt.backward(torch.tensor(dout))
    assert relative_error(dense.forward(x), yt.detach().numpy()) <= 1e-10
    assert relative_error(dense.backward(dout), xt.grad.numpy()) <= 1e-8
    assert set(dense.grads) == {name for name, _ in linear.named_parameters()}
    for name, p in linear.named_parameters():
        assert dense.grads[name].shape == p.shape
        assert relative_error(dense.grads[name], p.grad.numpy()) <= 1e-8


def test_dense_numerical_gradient():
    rng = np.random.default_rng(1)
    dense = Dense(3, 2, rng=rng)
    x, g = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    dense.forward(x)
    dx = dense.backward(g)

    def loss() -> float:
        return float((dense.forward(x) * g).sum())

    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6
    for name in ("weight", "bias"):
        numeric = numerical_gradient(loss, dense.params[name])
        assert relative_error(dense.grads[name], numeric) <= 1e-6


def test_dense_reads_params_replaced_between_calls():
    dense = Dense(2, 2, rng=np.random.default_rng(0))
    dense.params["weight"] = np.eye(2)
    dense.params["bias"] = np.array([1.0, -1.0])
    x = np.array([[3.0, 4.0]])
    np.testing.assert_array_equal(dense.forward(x), [[4.0, 3.0]])
    dense.params["weight"] = 2 * np.eye(2)
    np.testing.assert_array_equal(dense.backward(np.ones((1, 2))), [[2.0, 2.0]])


def test_dense_keeps_float32():
    dense = Dense(3, 2, rng=np.random.default_rng(0))
    dense.params = {k: v.astype(np.float32) for k, v in dense.params.items()}
    x = np.ones((2, 3), dtype=np.float32)
    assert dense.forward(x).dtype == np.float32
    assert dense.backward(np.ones((2, 2), dtype=np.float32)).dtype == np.float32
    assert all(g.dtype == np.float32 for g in dense.grads.values())


def test_dense_initial_weights_like_torch():
    dense = Dense(16, 8, rng=np.random.default_rng(0))
    assert dense.params["weight"].shape == (8, 16) and dense.params["bias"].shape == (8,)
    assert np.abs(dense.params["weight"]).max() <= 1 / 4
    assert np.abs(dense.params["bias"]).max() <= 1 / 4
    again = Dense(16, 8, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(dense.params["weight"], again.params["weight"])
    assert "bias" not in Dense(16, 8, bias=False).params


def test_dense_wrong_features_names_layer_and_shapes():
    with pytest.raises(LadderError) as err:
        Dense(64, 10).forward(np.zeros((8, 63)))
    assert str(err.value) == (
        "Dense(in=64, out=10): input has 63 features per row, expected 64 (input shape (8, 63))"
    )


def test_dense_other_bad_shapes():
    dense = Dense(4, 3)
    with pytest.raises(
        LadderError, match=r"Dense\(in=4, out=3\): input needs a batch axis.*\(4,\)"
    ):
        dense.forward(np.zeros(4))
    dense.forward(np.zeros((2, 4)))
    with pytest.raises(LadderError, match=r"gradient has shape \(2, 4\), expected .* \(2, 3\)"):
        dense.backward(np.zeros((2, 4)))
    with pytest.raises(LadderError, match=r"Dense\(in=0, out=3\)"):
        Dense(0, 3)


def test_flatten_matches_torch():
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5))
    xt = torch.tensor(x, requires_grad=True)
    yt = nn.Flatten()(xt)
    dout = np.random.default_rng(3).normal(size=(2, 60))
    yt.backward(torch.tensor(dout))
    flat = Flatten()
    assert relative_error(flat.forward(x), yt.detach().numpy()) == 0.0
    assert flat.backward(dout).shape == x.shape
    assert relative_error(flat.backward(dout), xt.grad.numpy()) == 0.0
    numeric = numerical_gradient(lambda: float((flat.forward(x) * dout).sum()), x)
    assert relative_error(flat.backward(dout), numeric) <= 1e-6


def test_flatten_bad_shapes():
    flat = Flatten()
    with pytest.raises(LadderError, match=r"Flatten: input needs a batch axis, got shape \(\)"):
        flat.forward(np.float64(1.0).reshape(()))
    flat.forward(np.zeros((2, 3, 4)))
    with pytest.raises(LadderError, match=r"Flatten: gradient has shape \(2, 11\).*\(2, 12\)"):
        flat.backward(np.zeros((2, 11)))

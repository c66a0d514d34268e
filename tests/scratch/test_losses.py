"""The losses against torch.nn.functional, their gradients against autograd and differences."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from ladder.errors import LadderError
from ladder.scratch.gradcheck import numerical_gradient, relative_error
from ladder.scratch.losses import mse, softmax_cross_entropy


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_matches_torch(weighted):
    rng = np.random.default_rng(0)
    logits, labels = rng.normal(size=(7, 4)) * 3, rng.integers(0, 4, size=7)
    weights = rng.uniform(0.5, 2.0, size=4) if weighted else None
    zt = torch.tensor(logits, requires_grad=True)
    wt = torch.tensor(weights) if weighted else None
    expected = F.cross_entropy(zt, torch.tensor(labels), weight=wt)
    expected.backward()
    loss, dlogits = softmax_cross_entropy(logits, labels, weights)
    assert isinstance(loss, float)
    assert abs(loss - expected.item()) <= 1e-10 * abs(expected.item())
    assert relative_error(dlogits, zt.grad.numpy()) <= 1e-8


@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_numerical_gradient(weighted):
    rng = np.random.default_rng(1)
    logits, labels = rng.normal(size=(3, 4)), np.array([0, 3, 3])
    weights = np.array([1.0, 2.0, 0.5, 3.0]) if weighted else None
    _, dlogits = softmax_cross_entropy(logits, labels, weights)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels, weights)[0], logits)
    assert relative_error(dlogits, numeric) <= 1e-6


def test_cross_entropy_gradient_is_softmax_minus_onehot_over_n():
    logits, labels = np.zeros((2, 3)), np.array([1, 2])
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx(np.log(3))
    np.testing.assert_allclose(dlogits, (np.full((2, 3), 1 / 3) - np.eye(3)[labels]) / 2)


def test_cross_entropy_is_stable_and_keeps_float32():
    logits = np.array([[1000.0, -1000.0], [-1000.0, 1000.0]], dtype=np.float32)
    loss, dlogits = softmax_cross_entropy(logits, np.array([1, 1]))
    assert loss == pytest.approx(1000.0)
    assert dlogits.dtype == np.float32 and np.isfinite(dlogits).all()


def test_cross_entropy_bad_inputs():
    logits = np.zeros((4, 3))
    with pytest.raises(LadderError, match=r"logits shape \(4, 3\) and labels shape \(5,\)"):
        softmax_cross_entropy(logits, np.zeros(5, dtype=int))
    with pytest.raises(LadderError, match=r"logits shape \(4,\) and labels shape \(4,\)"):
        softmax_cross_entropy(np.zeros(4), np.zeros(4, dtype=int))
    with pytest.raises(LadderError, match=r"label 3 is outside \[0, 3\) for logits shape \(4, 3\)"):
        softmax_cross_entropy(logits, np.array([0, 1, 3, 2]))
    with pytest.raises(LadderError, match="labels must be integers, got float64"):
        softmax_cross_entropy(logits, np.zeros(4))
    with pytest.raises(LadderError, match=r"weights must be \(3,\).*weights shape \(2,\)"):
        softmax_cross_entropy(logits, np.zeros(4, dtype=int), np.ones(2))


@pytest.mark.parametrize("shape", [(6,), (3, 4), (2, 3, 2)])
def test_mse_matches_torch(shape):
    rng = np.random.default_rng(2)
    pred, target = rng.normal(size=shape), rng.normal(size=shape)
    pt = torch.tensor(pred, requires_grad=True)
    expected = F.mse_loss(pt, torch.tensor(target))
    expected.backward()
    loss, dpred = mse(pred, target)
    assert abs(loss - expected.item()) <= 1e-10 * expected.item()
    assert relative_error(dpred, pt.grad.numpy()) <= 1e-8
    numeric = numerical_gradient(lambda: mse(pred, target)[0], pred)
    assert relative_error(dpred, numeric) <= 1e-6


def test_mse_shape_mismatch():
    with pytest.raises(
        LadderError, match=r"mse: prediction shape \(4, 1\) and target shape \(4,\) differ"
    ):
        mse(np.zeros((4, 1)), np.zeros(4))

"""L1 and L2 penalties against torch autograd; L2 in the loss equals SGD's weight_decay."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.scratch.gradcheck import numerical_gradient, relative_error
from ladder.scratch.penalties import l1, l2


def weights() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.normal(size=(3, 4)), rng.normal(size=5), np.array([0.0, 1.0])]


@pytest.mark.parametrize(
    ("penalty", "torch_expr"),
    [
        (l1, lambda ws, lam: lam * sum(w.abs().sum() for w in ws)),
        (l2, lambda ws, lam: lam / 2 * sum((w * w).sum() for w in ws)),
    ],
)
def test_penalty_matches_torch_autograd(penalty, torch_expr):
    ws, lam = weights(), 0.03
    leaves = [torch.tensor(w, requires_grad=True) for w in ws]
    expected = torch_expr(leaves, lam)
    expected.backward()
    value, grads = penalty(ws, lam)
    assert abs(value - expected.item()) <= 1e-12 * expected.item()
    assert len(grads) == len(ws)
    for g, leaf in zip(grads, leaves, strict=True):
        assert g.shape == leaf.shape
        assert relative_error(g, leaf.grad.numpy()) <= 1e-8


@pytest.mark.parametrize("penalty", [l1, l2])
def test_penalty_numerical_gradient(penalty):
    ws = [np.random.default_rng(1).normal(size=(2, 3))]  # no zeros: |w| is smooth there
    _, (grad,) = penalty(ws, 0.5)
    numeric = numerical_gradient(lambda: penalty(ws, 0.5)[0], ws[0])
    assert relative_error(grad, numeric) <= 1e-6


def test_l1_subgradient_at_zero_is_zero():
    _, (grad,) = l1([np.array([-2.0, 0.0, 3.0])], 0.1)
    np.testing.assert_array_equal(grad, [-0.1, 0.0, 0.1])


def test_l2_in_the_loss_is_sgd_weight_decay():
    rng = np.random.default_rng(2)
    w0, lam, lr = rng.normal(size=(4, 3)), 0.1, 0.05
    target = rng.normal(size=(4, 3))
    torch_w = torch.tensor(w0, requires_grad=True)
    opt = torch.optim.SGD([torch_w], lr=lr, momentum=0.9, weight_decay=lam)
    w = w0.copy()
    velocity = np.zeros_like(w)
    for _ in range(20):
        opt.zero_grad()
        ((torch_w - torch.tensor(target)) ** 2).sum().backward()
        opt.step()
        _, (decay,) = l2([w], lam)
        velocity = 0.9 * velocity + 2 * (w - target) + decay
        w = w - lr * velocity
    assert relative_error(w, torch_w.detach().numpy()) <= 1e-12

"""Initialisers: torch's fans, the bounds and spreads of torch.nn.init's formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from ladder.errors import LadderError
from ladder.scratch.init import (
    fans,
    he_normal,
    he_uniform,
    torch_default,
    xavier_normal,
    xavier_uniform,
)

SHAPES = [(10, 20), (6, 3, 5, 5), (4, 2, 3)]
BIG = (400, 250)  # 100,000 draws: the sample std is within ~0.5% of the true one


@pytest.mark.parametrize("shape", SHAPES)
def test_fans_match_torch(shape):
    assert fans(shape) == nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fans_need_two_dimensions():
    with pytest.raises(LadderError, match=r"at least 2 dimensions, got shape \(5,\)"):
        fans((5,))


def torch_bound(init, shape, **kw) -> float:
    """The largest |w| torch's own initialiser draws for `shape` (close to its bound)."""
    w = torch.empty(shape, dtype=torch.float64)
    init(w, **kw)
    return float(w.abs().max())


@pytest.mark.parametrize(
    ("ours", "bound", "torch_init", "kw"),
    [
        (
            lambda s, r: xavier_uniform(s, r),
            lambda i, o: math.sqrt(6 / (i + o)),
            nn.init.xavier_uniform_,
            {},
        ),
        (
            lambda s, r: xavier_uniform(s, r, gain=2.0),
            lambda i, o: 2 * math.sqrt(6 / (i + o)),
            nn.init.xavier_uniform_,
            {"gain": 2.0},
        ),
        (
            lambda s, r: he_uniform(s, r),
            lambda i, o: math.sqrt(6 / i),
            nn.init.kaiming_uniform_,
            {"nonlinearity": "relu"},
        ),
        (
            lambda s, r: torch_default(s, r),
            lambda i, o: 1 / math.sqrt(i),
            nn.init.kaiming_uniform_,
            {"a": math.sqrt(5)},
        ),
    ],
)
def test_uniform_bounds_and_std(ours, bound, torch_init, kw):
    fan_in, fan_out = fans(BIG)
    b = bound(fan_in, fan_out)
    w = ours(BIG, np.random.default_rng(0))
    assert w.shape == BIG and w.dtype == np.float64
    assert np.abs(w).max() <= b
    assert abs(np.abs(w).max() - torch_bound(torch_init, BIG, **kw)) <= 1e-3 * b
    assert abs(w.std() / (b / math.sqrt(3)) - 1) < 0.02


@pytest.mark.parametrize(
    ("ours", "std", "torch_init", "kw"),
    [
        (
            lambda s, r: xavier_normal(s, r),
            lambda i, o: math.sqrt(2 / (i + o)),
            nn.init.xavier_normal_,
            {},
        ),
        (
            lambda s, r: xavier_normal(s, r, gain=0.5),
            lambda i, o: 0.5 * math.sqrt(2 / (i + o)),
            nn.init.xavier_normal_,
            {"gain": 0.5},
        ),
        (
            lambda s, r: he_normal(s, r),
            lambda i, o: math.sqrt(2 / i),
            nn.init.kaiming_normal_,
            {"nonlinearity": "relu"},
        ),
    ],
)
def test_normal_std(ours, std, torch_init, kw):
    expected = std(*fans(BIG))
    w = ours(BIG, np.random.default_rng(1))
    assert abs(w.std() / expected - 1) < 0.02 and abs(w.mean()) < 0.02 * expected
    t = torch.empty(BIG, dtype=torch.float64)
    torch_init(t, **kw)
    assert abs(float(t.std()) / expected - 1) < 0.02  # torch's formula is the same


def test_torch_default_matches_nn_linear_and_conv_bounds():
    torch.manual_seed(0)
    for module, shape in ((nn.Linear(300, 200), (200, 300)), (nn.Conv2d(8, 16, 5), (16, 8, 5, 5))):
        b = 1 / math.sqrt(fans(shape)[0])
        assert float(module.weight.detach().abs().max()) <= b
        assert float(module.bias.detach().abs().max()) <= b
        ours = torch_default(shape, np.random.default_rng(2))
        assert np.abs(ours).max() <= b and np.abs(ours).max() > 0.9 * b
    bias = torch_default((200,), np.random.default_rng(3), fan_in=300)
    assert np.abs(bias).max() <= 1 / math.sqrt(300)


def test_reproducible_and_dtype():
    a = he_uniform((5, 4), np.random.default_rng(4))
    np.testing.assert_array_equal(a, he_uniform((5, 4), np.random.default_rng(4)))
    assert xavier_normal((5, 4), np.random.default_rng(4), dtype=np.float32).dtype == np.float32
    assert torch_default((3, 2)).shape == (3, 2)  # rng defaults to a fresh generator

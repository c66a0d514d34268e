"""Inverted dropout: its statistics, its backward through the same mask, eval identity."""

from __future__ import annotations

import numpy as np
import pytest

from ladder.errors import LadderError
from ladder.scratch.dropout import Dropout
from ladder.scratch.gradcheck import numerical_gradient, relative_error


def test_statistics_drop_p_and_scale_the_rest():
    layer = Dropout(0.3, rng=np.random.default_rng(0))
    x = np.full((400, 500), 2.0)
    y = layer.forward(x, training=True)
    dropped = y == 0
    assert abs(dropped.mean() - 0.3) < 0.005
    np.testing.assert_allclose(y[~dropped], 2.0 / 0.7)
    assert abs(y.mean() - 2.0) < 0.02  # the expectation is kept


def test_backward_uses_the_forward_mask():
    layer = Dropout(0.5, rng=np.random.default_rng(1))
    x = np.random.default_rng(2).normal(size=(6, 7))
    y = layer.forward(x, training=True)
    dout = np.random.default_rng(3).normal(size=(6, 7))
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dx == 0, y == 0)
    np.testing.assert_allclose(dx[y != 0], 2.0 * dout[y != 0])
    np.testing.assert_array_equal(layer.backward(dout), dx)  # no new mask in backward


def test_numerical_gradient_with_a_fixed_mask():
    layer = Dropout(0.4)
    x, g = (
        np.random.default_rng(4).normal(size=(3, 4)),
        np.random.default_rng(5).normal(size=(3, 4)),
    )

    def loss() -> float:
        layer.rng = np.random.default_rng(6)  # the same mask every call
        return float((layer.forward(x, training=True) * g).sum())

    loss()
    dx = layer.backward(g)
    assert relative_error(dx, numerical_gradient(loss, x)) <= 1e-6


def test_eval_and_p_zero_are_identity():
    x = np.random.default_rng(7).normal(size=(3, 4))
    for layer, training in ((Dropout(0.5), False), (Dropout(0.0), True)):
        assert layer.forward(x, training=training) is x
        g = np.ones_like(x)
        assert layer.backward(g) is g


def test_p_one_drops_everything():
    layer = Dropout(1.0)
    x = np.ones((2, 3))
    np.testing.assert_array_equal(layer.forward(x, training=True), 0.0)
    np.testing.assert_array_equal(layer.backward(x), 0.0)


def test_rng_is_settable_and_reproducible():
    x = np.ones((5, 5))
    a = Dropout(0.5, rng=np.random.default_rng(8)).forward(x, training=True)
    layer = Dropout(0.5)
    layer.rng = np.random.default_rng(8)
    np.testing.assert_array_equal(layer.forward(x, training=True), a)
    assert not np.array_equal(layer.forward(x, training=True), a)  # a new mask each pass


def test_keeps_float32():
    layer = Dropout(0.5, rng=np.random.default_rng(9))
    y = layer.forward(np.ones((3, 3), dtype=np.float32), training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones((3, 3), dtype=np.float32)).dtype == np.float32


def test_bad_p_and_bad_gradient_shape():
    with pytest.raises(LadderError, match=r"Dropout\(p=1.5\): p must be in \[0, 1\]"):
        Dropout(1.5)
    layer = Dropout(0.5)
    layer.forward(np.ones((2, 3)), training=True)
    with pytest.raises(LadderError, match=r"gradient has shape \(3, 2\), expected .* \(2, 3\)"):
        layer.backward(np.ones((3, 2)))

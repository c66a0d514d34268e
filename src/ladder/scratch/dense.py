r"""Dense (fully connected) layer and Flatten, forward and backward.

For a batch $X \in \mathbb R^{N \times n_\text{in}}$, with PyTorch's layout
$W \in \mathbb R^{n_\text{out} \times n_\text{in}}$ and $b \in \mathbb R^{n_\text{out}}$:

$$Y = X W^\top + \mathbf 1 b^\top, \qquad Y_{ij} = \sum_k X_{ik} W_{jk} + b_j.$$

Given $\bar Y = \partial L / \partial Y$ (same shape as $Y$), the chain rule through that sum gives

$$\bar X = \bar Y W, \qquad \bar W = \bar Y^\top X, \qquad \bar b = \mathbf 1^\top \bar Y
= \sum_i \bar Y_{i\cdot}.$$

Leading axes beyond the batch, e.g. $(N, T, n_\text{in})$ for one output per time step, are
treated as more rows: the sums over $i$ run over all of them.

Flatten reshapes $(N, d_1, d_2, \dots) \to (N, \prod_i d_i)$; it moves no number, so its
backward is the inverse reshape of $\bar Y$.
"""

from __future__ import annotations

import math

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.init import torch_default
from ladder.scratch.layer import Layer


class Dense(Layer):
    """y = x W^T + b over the last axis of x (N, ..., n_in) -> (N, ..., n_out).

    Args:
        rng: draws the initial weight and bias, U(-1/sqrt(n_in), 1/sqrt(n_in)) as PyTorch.
    """

    def __init__(
        self, n_in: int, n_out: int, bias: bool = True, rng: np.random.Generator | None = None
    ) -> None:
        super().__init__()
        if n_in < 1 or n_out < 1:
            raise LadderError(f"Dense(in={n_in}, out={n_out}): sizes must be at least 1")
        self.n_in, self.n_out = n_in, n_out
        rng = rng if rng is not None else np.random.default_rng()
        self.params["weight"] = torch_default((n_out, n_in), rng)
        if bias:
            self.params["bias"] = torch_default((n_out,), rng, fan_in=n_in)

    def __repr__(self) -> str:
        return f"Dense(in={self.n_in}, out={self.n_out})"

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if x.ndim < 2:
            raise LadderError(
                f"{self!r}: input needs a batch axis, shape (N, {self.n_in}), got shape {x.shape}"
            )
        if x.shape[-1] != self.n_in:
            raise LadderError(
                f"{self!r}: input has {x.shape[-1]} features per row, expected {self.n_in} "
                f"(input shape {x.shape})"
            )
        self.x = x
        y = x @ self.params["weight"].T  # (N, ..., n_out)
        if "bias" in self.params:
            y += self.params["bias"]
        return y

    def backward(self, dout: np.ndarray) -> np.ndarray:
        expected = (*self.x.shape[:-1], self.n_out)
        if dout.shape != expected:
            raise LadderError(
                f"{self!r}: gradient has shape {dout.shape}, expected the output shape {expected}"
            )
        rows = dout.reshape(-1, self.n_out)  # (rows, n_out): every leading axis is a row
        self.grads["weight"] = rows.T @ self.x.reshape(-1, self.n_in)  # (n_out, n_in)
        if "bias" in self.params:
            self.grads["bias"] = rows.sum(axis=0)
        return dout @ self.params["weight"]  # (N, ..., n_in)


class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...); backward reshapes the gradient back."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if x.ndim < 1:
            raise LadderError(f"Flatten: input needs a batch axis, got shape {x.shape}")
        self.shape = x.shape
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dout: np.ndarray) -> np.ndarray:
        expected = (self.shape[0], math.prod(self.shape[1:]))
        if dout.shape != expected:
            raise LadderError(
                f"Flatten: gradient has shape {dout.shape}, expected the output shape {expected} "
                f"(input shape {self.shape})"
            )
        return dout.reshape(self.shape)

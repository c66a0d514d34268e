r"""Activations: sigmoid, tanh, ReLU, softmax and log-softmax, forward and backward.

Element-wise, with $y = f(z)$ and the upstream gradient $\bar y = \partial L / \partial y$,
the backward pass is $\bar z = \bar y \odot f'(z)$, and each derivative is cheapest written
with the output the forward pass kept:

$$\sigma(z) = \frac{1}{1 + e^{-z}}, \qquad \sigma'(z) = \sigma(z)\,(1 - \sigma(z))$$

$$\tanh'(z) = 1 - \tanh^2(z)$$

$$\operatorname{relu}(z) = \max(0, z), \qquad \operatorname{relu}'(z) = \mathbb 1[z > 0]$$

(at $z = 0$ we take 0, as PyTorch does). The sigmoid is computed as
$\sigma(z) = \tfrac12 (1 + \tanh(z/2))$, which never overflows.

Softmax over one axis, shifted by the maximum so that no $e^{z}$ overflows (the shift cancels):

$$p_i = \frac{e^{z_i - m}}{\sum_j e^{z_j - m}}, \quad m = \max_j z_j, \qquad
\log p_i = z_i - m - \log \sum_j e^{z_j - m}.$$

Its Jacobian is $\partial p_i / \partial z_j = p_i(\delta_{ij} - p_j)$, i.e.
$J = \operatorname{diag}(p) - p p^\top$, so the backward pass needs no matrix:

$$\bar z = J^\top \bar p = p \odot \left(\bar p - \langle \bar p, p \rangle\right), \qquad
\bar z = \bar{\ell} - p \sum_j \bar{\ell}_j \quad \text{for } \ell = \log p.$$
"""

from __future__ import annotations

import numpy as np

from ladder.scratch.layer import Layer


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)), computed without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def tanh(z: np.ndarray) -> np.ndarray:
    """The hyperbolic tangent."""
    return np.tanh(z)


def relu(z: np.ndarray) -> np.ndarray:
    """max(0, z)."""
    return np.maximum(z, 0)


def softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(z) / sum exp(z) along `axis`, shifted by the max for stability."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(z: np.ndarray, axis: int = -1) -> np.ndarray:
    """log softmax(z) along `axis`: z - max - log sum exp(z - max)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax_backward(p: np.ndarray, dp: np.ndarray, axis: int = -1) -> np.ndarray:
    """dL/dz from p = softmax(z) and dL/dp: p * (dp - sum(dp * p))."""
    return p * (dp - (dp * p).sum(axis=axis, keepdims=True))


def log_softmax_backward(logp: np.ndarray, dlogp: np.ndarray, axis: int = -1) -> np.ndarray:
    """dL/dz from logp = log_softmax(z) and dL/dlogp: dlogp - softmax * sum(dlogp)."""
    return dlogp - np.exp(logp) * dlogp.sum(axis=axis, keepdims=True)


class Sigmoid(Layer):
    """Element-wise sigmoid; backward uses the kept output: dz = dy * y * (1 - y)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.out = sigmoid(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * self.out * (1 - self.out)


class Tanh(Layer):
    """Element-wise tanh; backward uses the kept output: dz = dy * (1 - y^2)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.out = np.tanh(x)
        return self.out

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout * (1 - self.out * self.out)


class ReLU(Layer):
    """Element-wise max(0, x); backward passes the gradient where x > 0."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.positive = x > 0  # (same shape as x) bool mask
        return np.where(self.positive, x, 0).astype(x.dtype, copy=False)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return np.where(self.positive, dout, 0).astype(dout.dtype, copy=False)

r"""Losses with their gradients: softmax cross-entropy and mean squared error.

**Softmax cross-entropy.** For logits $z \in \mathbb R^{N \times C}$, labels $y_i$ and class
weights $w$ (all ones when none are given), with $p_i = \operatorname{softmax}(z_i)$:

$$L = \frac{\sum_i w_{y_i}\, \ell_i}{\sum_i w_{y_i}}, \qquad
\ell_i = -\log p_{i y_i} = -z_{i y_i} + \log \sum_c e^{z_{ic}},$$

the weighted mean of `torch.nn.functional.cross_entropy(z, y, weight=w)` (with no weights,
the plain mean over the $N$ rows). The log-sum-exp is taken after subtracting the row's
maximum (see `activations.log_softmax`). Differentiating one row's loss,

$$\frac{\partial \ell_i}{\partial z_{ic}}
= -\mathbb 1[c = y_i] + \frac{e^{z_{ic}}}{\sum_k e^{z_{ik}}} = p_{ic} - \mathbb 1[c = y_i],$$

so the softmax Jacobian never needs forming: the gradient is "prediction minus one-hot",
scaled by the mean,

$$\frac{\partial L}{\partial z} = \frac{p - \operatorname{onehot}(y)}{N}
\quad\text{and, weighted,}\quad
\frac{\partial L}{\partial z_{i\cdot}} = \frac{w_{y_i}\,(p_{i\cdot} - \operatorname{onehot}(y_i))}
{\sum_k w_{y_k}}.$$

**Mean squared error.** For predictions $\hat y$ and targets $t$ of the same shape, $n$ entries
in all (`F.mse_loss`, mean reduction):

$$L = \frac1n \sum_j (\hat y_j - t_j)^2, \qquad
\frac{\partial L}{\partial \hat y} = \frac2n (\hat y - t).$$
"""

from __future__ import annotations

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.activations import log_softmax


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, np.ndarray]:
    """Mean (or class-weighted mean) cross-entropy of `logits` (N, C) against int `labels` (N,),
    and its gradient with respect to the logits (N, C)."""
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise LadderError(
            f"softmax_cross_entropy: logits must be (N, C) and labels (N,), got logits shape "
            f"{logits.shape} and labels shape {labels.shape}"
        )
    n, c = logits.shape
    if not np.issubdtype(labels.dtype, np.integer):
        raise LadderError(
            f"softmax_cross_entropy: labels must be integers, got {labels.dtype} "
            f"(labels shape {labels.shape})"
        )
    if n and (labels.min() < 0 or labels.max() >= c):
        bad = labels[(labels < 0) | (labels >= c)][0]
        raise LadderError(
            f"softmax_cross_entropy: label {bad} is outside [0, {c}) for logits shape "
            f"{logits.shape}"
        )
    if weights is not None and weights.shape != (c,):
        raise LadderError(
            f"softmax_cross_entropy: weights must be ({c},) for logits shape {logits.shape}, "
            f"got weights shape {weights.shape}"
        )
    rows = np.arange(n)
    logp = log_softmax(logits, axis=1)  # (N, C)
    dlogits = np.exp(logp)  # (N, C): softmax, minus the one-hot below
    dlogits[rows, labels] -= 1
    nll = -logp[rows, labels]  # (N,)
    if weights is None:
        dlogits /= n
        return float(nll.mean()), dlogits
    w = weights[labels].astype(logits.dtype, copy=False)  # (N,): each row's class weight
    total = w.sum()
    dlogits *= (w / total)[:, None]
    return float((w * nll).sum() / total), dlogits


def mse(pred: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean squared error over every entry, and its gradient with respect to `pred`."""
    if pred.shape != target.shape:
        raise LadderError(
            f"mse: prediction shape {pred.shape} and target shape {target.shape} differ"
        )
    diff = pred - target
    return float(np.mean(diff * diff)), diff * (2.0 / diff.size)

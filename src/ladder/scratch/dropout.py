r"""Inverted dropout: zero each unit with probability $p$ while training, scale the rest up.

With keep probability $q = 1 - p$ and a fresh mask $m_j \sim \operatorname{Bernoulli}(q)$ per
entry and per forward pass,

$$y = x \odot \frac{m}{q}, \qquad \mathbb E[y] = x,$$

so the expected activation is the same in training and evaluation, and evaluation needs no
rescaling: there $y = x$. The mask is a constant of the forward pass, so the backward pass
multiplies by the same scaled mask:

$$\bar x = \bar y \odot \frac{m}{q}.$$

At $p = 1$ every unit is dropped ($y = 0$, as PyTorch gives); at $p = 0$ it is the identity.
"""

from __future__ import annotations

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.layer import Layer


class Dropout(Layer):
    """Inverted dropout with drop probability `p`; masks come from `self.rng` (settable).

    Args:
        rng: draws the masks; replace `layer.rng` at any time to re-seed.
    """

    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise LadderError(f"Dropout(p={p}): p must be in [0, 1]")
        self.p = p
        self.rng = rng if rng is not None else np.random.default_rng()
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.p == 0.0:
            self.mask = None  # identity: backward passes the gradient through
            return x
        keep = 1.0 - self.p
        if keep == 0.0:
            self.mask = np.zeros_like(x)
        else:
            float32 = x.dtype == np.float32
            u = self.rng.random(x.shape, dtype=np.float32 if float32 else np.float64)
            self.mask = (u < keep).astype(x.dtype)  # (same shape as x) 0 or 1
            self.mask *= 1.0 / keep  # now 0 or 1/q
        return x * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        if self.mask is None:
            return dout
        if dout.shape != self.mask.shape:
            raise LadderError(
                f"Dropout(p={self.p}): gradient has shape {dout.shape}, expected the output "
                f"shape {self.mask.shape}"
            )
        return dout * self.mask

"""`Layer`: what every NumPy layer of `ladder.scratch` offers.

A layer keeps its learned arrays in `params` under PyTorch's names and layouts (a dense layer's
`weight` is (out, in), as in `torch.nn.Linear`), so weights copy to and from the PyTorch twin
without reshaping. `forward` keeps what `backward` needs; `backward` takes the gradient of the
loss with respect to the layer's output and returns the one with respect to its input, after
writing the gradient of every parameter into `grads` (overwritten, not accumulated).
"""

from __future__ import annotations

import numpy as np


class Layer:
    """A layer with no parameters unless a subclass sets them (see the module docstring)."""

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output for input `x`; `training` turns on dropout's masks."""
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        """dL/dx from dL/dout of the last `forward`; fills `grads` (dL/dparam)."""
        raise NotImplementedError

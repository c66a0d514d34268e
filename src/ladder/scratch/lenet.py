r"""LeNet-5 in NumPy, as the `cnn` rung's lenet5: conv 5x5 (6) -> ReLU -> max-pool 2 -> conv 5x5
(16) -> ReLU -> max-pool 2 -> flatten -> [dropout -> dense] 120 -> ReLU -> 84 -> ReLU -> logits.

Sizes on a 32x32 image: 32 -conv-> 28 -pool-> 14 -conv-> 10 -pool-> 5, so the first dense layer
sees $16 \cdot 5 \cdot 5 = 400$ features. The backward pass is the same chain as the MLP's
(`ladder.scratch.mlp`) with the convolution's and the pooling's own backward steps
(`ladder.scratch.conv`, `ladder.scratch.pooling`) below the flatten.
"""

from __future__ import annotations

import numpy as np

from ladder.scratch.activations import ReLU
from ladder.scratch.conv import Conv2d
from ladder.scratch.dense import Dense, Flatten
from ladder.scratch.dropout import Dropout
from ladder.scratch.network import Sequential
from ladder.scratch.pooling import MaxPool2d

WIDTHS = (6, 16, 120, 84)  # conv1 and conv2 channels, fc1 and fc2 units


def lenet_side(size: int) -> int:
    """Height (or width) after the two conv5 + pool2 stages."""
    return ((size - 4) // 2 - 4) // 2


def LeNet5(
    channels: int,
    height: int,
    width: int,
    n_out: int,
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Sequential:
    """LeNet-5 (ReLU, max-pooling) from images (N, channels, height, width) to `n_out`."""
    c1, c2, f1, f2 = WIDTHS
    flat = c2 * lenet_side(height) * lenet_side(width)
    return Sequential(
        Conv2d(channels, c1, 5, rng=rng),  # (N, 6, H-4, W-4)
        ReLU(),
        MaxPool2d(2),  # (N, 6, (H-4)/2, (W-4)/2)
        Conv2d(c1, c2, 5, rng=rng),
        ReLU(),
        MaxPool2d(2),  # (N, 16, h, w)
        Flatten(),  # (N, 16 * h * w)
        Dropout(dropout, rng=rng),
        Dense(flat, f1, rng=rng),
        ReLU(),
        Dropout(dropout, rng=rng),
        Dense(f1, f2, rng=rng),
        ReLU(),
        Dropout(dropout, rng=rng),
        Dense(f2, n_out, rng=rng),
    )

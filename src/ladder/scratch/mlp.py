r"""The MLP of the `mlp` rung in NumPy: flatten, then per hidden layer Dense, activation and
dropout, then a Dense head to the logits.

Forward propagation, layer by layer, $a^{(0)} = x$,

$$z^{(l)} = a^{(l-1)} W^{(l)\top} + b^{(l)}, \qquad a^{(l)} = \phi(z^{(l)}),$$

and backpropagation runs the chain rule the other way, from
$\delta^{(L)} = \partial L/\partial z^{(L)}$:

$$\frac{\partial L}{\partial W^{(l)}} = \delta^{(l)\top} a^{(l-1)}, \qquad
\frac{\partial L}{\partial b^{(l)}} = \textstyle\sum_n \delta^{(l)}_n, \qquad
\delta^{(l-1)} = \big(\delta^{(l)} W^{(l)}\big) \odot \phi'(z^{(l-1)}).$$
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from ladder.scratch.activations import ReLU, Sigmoid, Tanh
from ladder.scratch.dense import Dense, Flatten
from ladder.scratch.dropout import Dropout
from ladder.scratch.layer import Layer
from ladder.scratch.network import Sequential

ACTIVATIONS: dict[str, type[Layer]] = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


def mlp(
    n_in: int,
    hidden: list[int],
    n_out: int,
    activation: str = "relu",
    dropout: float = 0.0,
    rng: np.random.Generator | None = None,
) -> Sequential:
    """Flatten -> [Dense -> activation -> Dropout] per hidden size -> Dense to `n_out`."""
    layers: list[Layer] = [Flatten()]
    for a, b in pairwise([n_in, *hidden]):
        layers += [Dense(a, b, rng=rng), ACTIVATIONS[activation](), Dropout(dropout, rng=rng)]
    layers.append(Dense(([n_in, *hidden])[-1], n_out, rng=rng))
    return Sequential(*layers)

r"""Sequential: layers composed, and the chain rule run backwards through them.

For $f = f_K \circ \dots \circ f_1$ with $h_0 = x$ and $h_k = f_k(h_{k-1})$, the forward pass
keeps every layer's cache, and the backward pass applies each layer's vector-Jacobian product
in reverse order,

$$\bar h_{k-1} = \left(\frac{\partial h_k}{\partial h_{k-1}}\right)^{\!\top} \bar h_k,
\qquad k = K, \dots, 1,$$

each layer writing its parameter gradients $\bar\theta_k = (\partial h_k / \partial \theta_k)^\top
\bar h_k$ on the way. Parameters are named "<index>.<name>" like the keys of a PyTorch
`nn.Sequential`'s state dict ("0.weight", "2.bias"; a nested Sequential adds its own index).
"""

from __future__ import annotations

import numpy as np

from ladder.errors import LadderError
from ladder.scratch.dropout import Dropout
from ladder.scratch.layer import Layer


class Sequential(Layer):
    """Layers applied in order; its own `params` stay empty, see `parameters()`."""

    def __init__(self, *layers: Layer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise LadderError(
                    f"Sequential: layer {i} is a {type(layer).__name__}, not a scratch Layer"
                )
        self.layers = list(layers)

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> Layer:
        return self.layers[index]

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def backward(self, dout: np.ndarray) -> np.ndarray | None:  # type: ignore[override]
        """dL/dx through every layer in reverse; None when the first layer's input has no
        gradient (an Embedding's ids)."""
        grad: np.ndarray | None = dout
        for i in reversed(range(len(self.layers))):
            if grad is None:
                raise LadderError(
                    f"Sequential: layer {i + 1} ({type(self.layers[i + 1]).__name__}) returns no "
                    "input gradient, so it must come first"
                )
            grad = self.layers[i].backward(grad)
        return grad

    def parameters(self) -> list[tuple[str, np.ndarray]]:
        """("<index>.<name>", array) for every parameter, layer by layer."""
        return [
            (f"{i}.{name}", array)
            for i, layer in enumerate(self.layers)
            for name, array in _named(layer, "params")
        ]

    def parameter_layers(self) -> list[Layer]:
        """The layers that hold parameters, nested ones included, in the order of `parameters()`."""
        found: list[Layer] = []
        for layer in self.layers:
            if isinstance(layer, Sequential):
                found.extend(layer.parameter_layers())
            elif layer.params:
                found.append(layer)
        return found

    def reseed(self, seed: int) -> None:
        """Draw every Dropout mask, nested ones included, from one generator seeded with `seed`."""
        rng = np.random.default_rng(seed)
        for layer in _flattened(self):
            if isinstance(layer, Dropout):
                layer.rng = rng

    def gradients(self) -> list[tuple[str, np.ndarray]]:
        """("<index>.<name>", dL/dparam) in the order of `parameters()`, after a backward."""
        return [
            (f"{i}.{name}", array)
            for i, layer in enumerate(self.layers)
            for name, array in _named(layer, "grads")
        ]


def _named(layer: Layer, which: str) -> list[tuple[str, np.ndarray]]:
    """A layer's params or grads by name, in its params' order; a nested Sequential's with
    their own indices."""
    if isinstance(layer, Sequential):
        return layer.parameters() if which == "params" else layer.gradients()
    if which == "params":
        return list(layer.params.items())
    missing = [name for name in layer.params if name not in layer.grads]
    if missing:
        raise LadderError(
            f"Sequential: {type(layer).__name__} has no gradient for {missing}; run backward first"
        )
    return [(name, layer.grads[name]) for name in layer.params]


def _flattened(network: Sequential) -> list[Layer]:
    """Every layer of a Sequential, nested Sequentials opened up."""
    layers: list[Layer] = []
    for layer in network.layers:
        layers.extend(_flattened(layer) if isinstance(layer, Sequential) else [layer])
    return layers

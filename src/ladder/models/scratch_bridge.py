"""`NumpyModule`: a NumPy network (`ladder.scratch`) that trains as a PyTorch module.

The module owns a PyTorch *twin*: the PyTorch rung with the same architecture (the MLP, LeNet-5
or the recurrent classifier). The twin holds the parameters, so the state dict, checkpoints,
early stopping, the safetensors artifact and the optimizer see ordinary `nn.Parameter`s; but
`forward` and the backward pass run in NumPy: one `torch.autograd.Function` hands the input and
the parameters' memory to the NumPy network, and the NumPy backward pass returns the gradient of
every parameter. Autograd never looks inside the network.

While `torch.onnx.export` traces the module, `forward` runs the twin instead: the ONNX graph
is the twin's, and the artifact's self-verification (ONNX Runtime against the NumPy predictions)
checks that NumPy and PyTorch agree on every exported model.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch  # noqa: TID253
from threadpoolctl import ThreadpoolController
from torch import nn  # noqa: TID253

from ladder.errors import LadderError
from ladder.scratch.layer import Layer


class NumpyNetwork(Protocol):
    """What the bridge needs of a NumPy network."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray: ...

    def backward(self, dout: np.ndarray) -> np.ndarray | None: ...

    def parameter_layers(self) -> list[Layer]:
        """The layers that hold parameters, in the order of the twin's `named_parameters`."""
        ...

    def reseed(self, seed: int) -> None:
        """Seed the network's dropout masks."""
        ...


class NumpyModule(nn.Module):
    """A NumPy network whose parameters live in the PyTorch `twin` (see the module docstring).

    `twin_type` is the registry type of the twin (named in errors about features NumPy lacks).
    """

    def __init__(self, network: NumpyNetwork, twin: nn.Module, twin_type: str) -> None:
        super().__init__()
        self.twin = twin
        self.network = network
        self.twin_type = twin_type
        slots = _parameter_slots(network, twin)
        self._slots = [(layer, key) for layer, key, _ in slots]
        # by name: pruning re-registers a weight, which moves it in the twin's parameter order
        self._names = [name for _, _, name in slots]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export():
            return self.twin(x)  # the exported graph is the twin's (same weights)
        if x.device.type != "cpu":
            raise LadderError(
                f"this scratch model computes in NumPy on the CPU; input is on {x.device}: "
                f"use type {self.twin_type} for the GPU"
            )
        params = dict(self.twin.named_parameters())
        weights = [params[name] for name in self._names]
        return _NumpyPass.apply(x, self, *weights)

    def bind(self, weights: tuple[torch.Tensor, ...]) -> None:
        """Point every NumPy layer's parameter arrays at the twin's tensors' memory."""
        for (layer, key), weight in zip(self._slots, weights, strict=True):
            layer.params[key] = weight.detach().numpy()

    def gradients(self, like: tuple[torch.Tensor, ...]) -> list[torch.Tensor]:
        """The NumPy backward pass's parameter gradients as tensors, in the twin's order."""
        return [
            torch.from_numpy(np.array(layer.grads[key], dtype=w.numpy().dtype, copy=True))
            for (layer, key), w in zip(self._slots, like, strict=True)
        ]


# NumPy's BLAS is held to one thread inside a pass: beside torch's OpenMP workers (which spin
# between batches) a multi-threaded BLAS starves, and the rung ran ~9x slower on 2 cores
# (benchmarks/scratch.py, claim 3).
_BLAS = ThreadpoolController()


class _NumpyPass(torch.autograd.Function):
    """Forward and backward of a `NumpyModule`'s network, in NumPy."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, module: NumpyModule, *weights: torch.Tensor) -> Any:
        module.bind(weights)
        if module.training:  # dropout masks from torch's generator: seeded runs repeat
            module.network.reseed(int(torch.randint(0, 2**62, (1,)).item()))
        with _BLAS.limit(limits=1, user_api="blas"):
            out = module.network.forward(x.detach().numpy(), training=module.training)
        ctx.module, ctx.weights = module, weights
        return torch.from_numpy(np.ascontiguousarray(out))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, dout: torch.Tensor) -> Any:
        module: NumpyModule = ctx.module
        with _BLAS.limit(limits=1, user_api="blas"):
            module.network.backward(dout.detach().contiguous().numpy())
        return (None, None, *module.gradients(ctx.weights))


def _parameter_slots(network: NumpyNetwork, twin: nn.Module) -> list[tuple[Layer, str, str]]:
    """(layer, parameter key, the twin's parameter name) of every NumPy parameter, matched by
    position and shape to the twin's freshly built parameters."""
    slots = [(layer, key) for layer in network.parameter_layers() for key in layer.params]
    named = list(twin.named_parameters())
    if len(slots) != len(named):
        raise ValueError(f"the NumPy network has {len(slots)} parameters, its twin {len(named)}")
    for (layer, key), (name, weight) in zip(slots, named, strict=True):
        if layer.params[key].shape != tuple(weight.shape):
            raise ValueError(
                f"{type(layer).__name__}.{key} {layer.params[key].shape} does not match the "
                f"twin's {name} {tuple(weight.shape)}"
            )
    return [(layer, key, name) for (layer, key), (name, _) in zip(slots, named, strict=True)]

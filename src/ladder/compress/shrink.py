"""Structured shrinking of a feed-forward mlp or cnn: each hidden layer keeps its channels or
neurons with the largest L1 norms (of their incoming weights), and the model is rebuilt from
its shrunk config (`hidden`, `channels` or `lenet_widths`) with the kept slices, so layer
shapes, parameter count and latency really shrink. The output layer keeps every class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.models.cnn import LENET_WIDTHS
from ladder.registry import get_spec

WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
NORMS = (nn.BatchNorm1d, nn.BatchNorm2d)


@dataclass
class _Layer:
    """A Linear/Conv layer and the BatchNorm over its outputs, if any."""

    weighted: nn.Module
    norm: nn.Module | None = None

    @property
    def width(self) -> int:
        """Its output channels/neurons."""
        return int(self.weighted.weight.shape[0])


def layer_chain(module: nn.Module) -> list[_Layer]:
    """The Linear/Conv layers of a feed-forward mlp or cnn in forward order (registration
    order, which these models follow), each with its BatchNorm; the last is the output layer."""
    layers: list[_Layer] = []
    for sub in module.modules():
        if isinstance(sub, WEIGHTED):
            layers.append(_Layer(sub))
        elif isinstance(sub, NORMS) and layers:
            layers[-1].norm = sub
    return layers


def _widths_key(config: Any) -> str:
    """The config field that holds the hidden widths of an mlp or cnn."""
    if hasattr(config, "hidden"):
        return "hidden"
    return "lenet_widths" if config.arch == "lenet5" else "channels"


def hidden_widths(config: Any) -> list[int]:
    """The hidden layer widths an mlp or cnn config describes."""
    widths = getattr(config, _widths_key(config))
    return list(LENET_WIDTHS if widths is None else widths)  # None: lenet5's own


def largest_l1_units(weight: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices (ascending) of the `keep` output units whose incoming weights have the largest
    L1 norms."""
    norms = weight.detach().abs().flatten(1).sum(dim=1)
    return torch.sort(torch.topk(norms, keep).indices).values


@torch.no_grad()
def copy_kept(old: nn.Module, new: nn.Module, kept: list[torch.Tensor]) -> None:
    """Copy into `new` (the shrunk model) the slices of `old` that `kept` (one index tensor
    per hidden layer) keeps: each layer's kept outputs, and the next layer's matching inputs.
    A conv feeding a flatten -> Linear keeps every spatial position of its kept channels."""
    old_layers, new_layers = layer_chain(old), layer_chain(new)
    for j, (src, dst) in enumerate(zip(old_layers, new_layers, strict=True)):
        rows = kept[j] if j < len(kept) else torch.arange(src.width)  # the output layer: all
        cols = torch.arange(src.weighted.weight.shape[1])
        if j > 0:
            before = old_layers[j - 1].width
            positions = src.weighted.weight.shape[1] // before  # flattened h * w, else 1
            # (channel, position) -> channel * positions + position, the flatten order
            cols = (kept[j - 1][:, None] * positions + torch.arange(positions)).flatten()
        dst.weighted.weight.copy_(src.weighted.weight[rows][:, cols])
        if src.weighted.bias is not None:
            dst.weighted.bias.copy_(src.weighted.bias[rows])
        if src.norm is not None:
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(dst.norm, name).copy_(getattr(src.norm, name)[rows])
            dst.norm.num_batches_tracked.copy_(src.norm.num_batches_tracked)


def shrink(
    module: nn.Module,
    model_type: str,
    config: Any,
    feature_shape: tuple[int, ...],
    n_classes: int,
    widths: list[int],
) -> tuple[nn.Module, Any]:
    """A model of `model_type` rebuilt with hidden layer `widths`, each keeping the units of
    `module` with the largest L1 norms; returns it (eval mode) and its config."""
    hidden = layer_chain(module)[:-1]
    kept = [largest_l1_units(h.weighted.weight, w) for h, w in zip(hidden, widths, strict=True)]
    dump = {**config.model_dump(mode="json"), _widths_key(config): widths}
    shrunk = type(config).model_validate(dump)
    smaller = get_spec(model_type).build(shrunk, feature_shape, n_classes)
    copy_kept(module, smaller, kept)
    return smaller.eval(), shrunk


__all__ = ["copy_kept", "hidden_widths", "largest_l1_units", "layer_chain", "shrink"]

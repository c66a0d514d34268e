"""The torch int8 format of an artifact: a dynamically quantized module saved without pickles.

`weights.int8.safetensors` holds, for each quantized weight (a Linear's `weight`, a recurrent
layer's `weight_ih_l0`, ...), its int8 values under the float model's own key plus
`<key>.scale` (float64) and `<key>.zero_point` (int64) beside it, and every other tensor
(biases, convolutions, embeddings, norms) in float32. Loading rebuilds the float architecture,
quantizes it the same way and puts those exact int8 weights back, so the loaded module computes
what `torch.ao.quantization.quantize_dynamic` made in memory.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ladder.errors import ArtifactError, LadderError
from ladder.export.architecture import neural_architecture

_SCALE, _ZERO_POINT = ".scale", ".zero_point"  # suffixes of an int8 weight's companions


def dynamic_int8(module: Any, name: str) -> Any:
    """`module` with its Linear, LSTM and GRU layers dynamically quantized to int8 (a copy);
    LadderError naming `name` when it has none of them."""
    import torch
    from torch import nn

    with _quiet_torch_quantization():
        from torch.ao.quantization import quantize_dynamic

        quantized = quantize_dynamic(module, {nn.Linear, nn.LSTM, nn.GRU}, dtype=torch.qint8)
    if not _int8_layers(quantized):
        raise LadderError(
            f"{name}: nothing to quantize (torch dynamic int8 covers Linear, LSTM and GRU "
            "layers; this model has none)"
        )
    return quantized.eval()


def int8_state(quantized: Any) -> dict[str, Any]:
    """The tensors of a dynamically quantized module, safetensors-ready: every int8 weight
    under its float key with `.scale` and `.zero_point` beside it, the rest as they are."""
    layers = _int8_layers(quantized)
    state = {
        key: value.detach().contiguous()
        for key, value in quantized.state_dict().items()
        if not any(key.startswith(prefix) for prefix in layers)
    }
    for prefix, layer in layers.items():
        weights, biases = _weights_and_biases(layer)
        for key, weight in weights.items():
            state.update(_int8_tensors(prefix + key, weight))
        for key, bias in biases.items():
            if bias is not None:
                state[prefix + key] = bias.detach().contiguous()
    return state


def load_int8_module(path: Path, manifest: dict[str, Any]) -> Any:
    """The torch int8 variant's module (eval mode), rebuilt from its `weights.int8.safetensors`
    (`path`): the float architecture, quantized, holding the saved int8 weights."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except SafetensorError as exc:
        raise ArtifactError(f"{path}: not a safetensors file ({exc})") from exc
    int8_keys = {key[: -len(_SCALE)] for key in tensors if key.endswith(_SCALE)}
    companions = {key + suffix for key in int8_keys for suffix in (_SCALE, _ZERO_POINT)}
    floats = {k: v for k, v in tensors.items() if k not in int8_keys and k not in companions}
    module = neural_architecture(path.parent, manifest)
    try:
        missing, unexpected = module.load_state_dict(floats, strict=False)
    except RuntimeError as exc:
        raise _misfit(path, manifest, str(exc).splitlines()[0]) from exc
    if unexpected or set(missing) != int8_keys:
        odd = sorted(set(unexpected) | (set(missing) ^ int8_keys))
        raise _misfit(path, manifest, f"keys {', '.join(odd[:3])}")
    quantized = dynamic_int8(module, manifest["name"])
    _put_int8_weights(quantized, tensors, path, manifest)
    return quantized.eval()


def _put_int8_weights(
    quantized: Any, tensors: dict[str, Any], path: Path, manifest: dict[str, Any]
) -> None:
    """Give each quantized layer of `quantized` its saved int8 weights and float biases."""
    from torch.ao.nn.quantized import dynamic

    for prefix, layer in _int8_layers(quantized).items():
        weights, biases = _weights_and_biases(layer)
        wanted = [prefix + key + end for key in weights for end in ("", _SCALE, _ZERO_POINT)]
        wanted += [prefix + key for key, bias in biases.items() if bias is not None]
        absent = [key for key in wanted if key not in tensors]
        if absent:
            raise _misfit(path, manifest, f"{absent[0]} is missing")
        with _quiet_torch_quantization():
            saved = {key: _qint8(tensors, prefix + key) for key in weights}
            saved.update({key: tensors.get(prefix + key) for key in biases})
            if isinstance(layer, dynamic.Linear):
                layer.set_weight_bias(saved["weight"], saved["bias"])
            else:
                layer.set_weight_bias(saved)


def _misfit(path: Path, manifest: dict[str, Any], why: str) -> ArtifactError:
    return ArtifactError(
        f"{path}: int8 weights do not fit the {manifest['model_type']} model ({why})"
    )


def _int8_layers(quantized: Any) -> dict[str, Any]:
    """The dynamically quantized layers of a module, by state_dict prefix ("head.")."""
    from torch.ao.nn.quantized import dynamic

    kinds = (dynamic.Linear, dynamic.LSTM, dynamic.GRU)
    return {
        f"{name}." if name else "": layer
        for name, layer in quantized.named_modules()
        if isinstance(layer, kinds)
    }


def _weights_and_biases(layer: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A quantized layer's int8 weights and float biases (None: no bias), by float key."""
    from torch.ao.nn.quantized import dynamic

    if isinstance(layer, dynamic.Linear):
        return {"weight": layer.weight()}, {"bias": layer.bias()}
    packed = layer._weight_bias()  # LSTM/GRU: {"weight": {"weight_ih_l0": ...}, "bias": {...}}
    return packed["weight"], packed["bias"]


def _int8_tensors(key: str, weight: Any) -> dict[str, Any]:
    """A per-tensor qint8 weight as three plain tensors: int8 values, scale, zero point."""
    import torch

    if weight.qscheme() not in (torch.per_tensor_affine, torch.per_tensor_symmetric):
        raise LadderError(f"{key}: expected a per-tensor int8 weight, got {weight.qscheme()}")
    return {
        key: weight.int_repr().contiguous(),
        key + _SCALE: torch.tensor(weight.q_scale(), dtype=torch.float64),
        key + _ZERO_POINT: torch.tensor(weight.q_zero_point(), dtype=torch.int64),
    }


def _qint8(tensors: dict[str, Any], key: str) -> Any:
    """The qint8 weight saved under `key` (values, scale and zero point), bit for bit."""
    import torch

    return torch._make_per_tensor_quantized_tensor(
        tensors[key], float(tensors[key + _SCALE]), int(tensors[key + _ZERO_POINT])
    )


@contextlib.contextmanager
def _quiet_torch_quantization() -> Iterator[None]:
    """Silence torch's deprecation notes on torch.ao.quantization and quantized tensors (it
    points to torchao, which ladder does not depend on; both still work in torch 2.13)."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", "torch.ao.quantization is deprecated", category=DeprecationWarning
        )
        warnings.filterwarnings(
            "ignore", "torch.quantize_per_tensor, torch.quantize_per_channel", category=UserWarning
        )
        yield


__all__ = ["dynamic_int8", "int8_state", "load_int8_module"]

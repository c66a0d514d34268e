"""ONNX export of ladder's GPT with its KV cache, verified against PyTorch; the graph decodes
without torch in `ladder.export.onnx_decoder`, whose module docstring gives its inputs and
outputs.

`GPT.forward` picks its attention mask by Python branches on the cache's length (none for a
prompt, none for one new token, a shifted triangle otherwise), which a traced graph would freeze
at the traced shapes. `_ExportGPT` runs the same modules and weights with one mask for every
case, key position <= query position, built from the cache's length at run time; the
positions come from it too. `verify_gpt_onnx` checks that both agree.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from typing import Any

import numpy as np
import torch  # noqa: TID253
from torch import nn  # noqa: TID253

from ladder.errors import first_line
from ladder.export.onnx import OPSET, ExportError, _quiet_c_stderr
from ladder.export.onnx_decoder import (
    INPUT_IDS,
    LOGITS,
    METADATA_KEY,
    OnnxDecoder,
    past_names,
    present_names,
)
from ladder.models.gpt import GPT, Block, rotate

TOLERANCE = 1e-4  # max |logit difference|, ONNX Runtime vs PyTorch


class _ExportGPT(nn.Module):
    """A GPT's forward for tracing: (input_ids, past_key_0, past_value_0, ...) ->
    (logits, present_key_0, present_value_0, ...), with an empty cache for a prompt."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        m = self.model
        seq, t_past = idx.shape[1], past[0].shape[2]
        positions = torch.arange(seq, device=idx.device) + t_past  # (seq,)
        # query at position p sees the keys at 0 .. p, cached or new
        keys = torch.arange(t_past + seq, device=idx.device)  # (t_past + seq,)
        allowed = keys[None, :] <= positions[:, None]  # (seq, t_past + seq)
        head = m.lm_head.weight.t()  # (n_embd, vocab)
        if m.lm_head.weight is m.wte.weight:
            # tied: the embedding gathers the head's columns, so that the graph holds the matrix
            # once (the exporter would store the head's transposed copy beside the table)
            x = head.index_select(1, idx.reshape(-1)).t().reshape(*idx.shape, -1)
        else:
            x = m.wte(idx)  # (batch, seq, n_embd)
        rope = None
        if m.wpe is not None:
            x = x + m.wpe(positions)
        else:
            rope = (m.rope_cos[positions], m.rope_sin[positions])  # each (seq, head_dim)
        present: list[torch.Tensor] = []
        for i, block in enumerate(m.blocks):
            x, k, v = _block(block, x, rope, past[2 * i], past[2 * i + 1], allowed)
            present += [k, v]
        return m.norm(x) @ head, *present  # logits (batch, seq, vocab)


def _block(
    block: Block,
    x: torch.Tensor,
    rope: tuple[torch.Tensor, torch.Tensor] | None,
    past_k: torch.Tensor,
    past_v: torch.Tensor,
    allowed: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`Block.forward` with the mask given: (x after the block, keys, values so far)."""
    attn = block.attn
    h = block.norm1(x)
    batch, seq, n_embd = h.shape
    head_dim = n_embd // attn.n_head
    qkv = attn.qkv(h).view(batch, seq, 3, attn.n_head, head_dim)  # (b, seq, 3, heads, hd)
    q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (batch, heads, seq, head_dim)
    if rope is not None:
        q, k = rotate(q, *rope), rotate(k, *rope)
    k = torch.cat((past_k, k), dim=2)  # (batch, heads, t_past + seq, head_dim)
    v = torch.cat((past_v, v), dim=2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(head_dim)  # (b, heads, seq, t_past + seq)
    weights = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)
    y = (weights @ v).transpose(1, 2).reshape(batch, seq, n_embd)  # heads joined
    x = x + attn.proj(y)
    return x + block.mlp(block.norm2(x)), k, v


def export_gpt(model: GPT) -> bytes:
    """The ONNX bytes of a GPT with its KV cache as inputs and outputs (dynamic batch, new
    tokens and cache length); ExportError when torch.onnx cannot export it."""
    if not isinstance(model, GPT):
        raise ExportError(f"export_gpt exports ladder's GPT; got {type(model).__name__}")
    config = model.config
    head_dim = config.n_embd // config.n_head
    param = next(model.parameters())
    # trace with a cache and distinct sizes, so that no axis is taken for a constant
    seq = min(2, config.block_size)
    t_past = min(3, config.block_size - seq)
    idx = torch.zeros((2, seq), dtype=torch.long, device=param.device)
    past = [
        torch.zeros((2, config.n_head, t_past, head_dim), dtype=param.dtype, device=param.device)
        for _ in range(2 * config.n_layer)
    ]
    inputs, outputs = past_names(config.n_layer), present_names(config.n_layer)
    axes = {INPUT_IDS: {0: "batch", 1: "new"}, LOGITS: {0: "batch", 1: "new"}}
    axes.update({name: {0: "batch", 2: "past"} for name in inputs})
    axes.update({name: {0: "batch", 2: "total"} for name in outputs})
    buffer = io.BytesIO()
    training = model.training
    model.eval()
    try:
        with warnings.catch_warnings(), _quiet_c_stderr(), torch.no_grad():
            # the TorchScript-based exporter, as for ladder's classifiers: it is deprecated, but
            # the dynamo one needs onnxscript, and verify_gpt_onnx checks the result
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _ExportGPT(model),
                (idx, *past),
                buffer,
                input_names=[INPUT_IDS, *inputs],
                output_names=[LOGITS, *outputs],
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types for an unsupported op
        raise ExportError(f"cannot export the GPT to ONNX ({first_line(exc)})") from exc
    finally:
        model.train(training)
    meta = {"block_size": config.block_size, "vocab_size": model.vocab_size}
    return _with_metadata(buffer.getvalue(), meta)


def _with_metadata(graph: bytes, meta: dict[str, Any]) -> bytes:
    """The graph with `meta` as JSON under METADATA_KEY in its metadata."""
    import onnx

    proto = onnx.load_from_string(graph)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return proto.SerializeToString()


def verify_gpt_onnx(
    model: GPT,
    graph: bytes,
    prompt_length: int = 8,
    steps: int = 4,
    batch: int = 2,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> float:
    """The max |logit difference| between PyTorch and ONNX Runtime over a random prompt of
    `batch` sequences and `steps` cached one-token decode steps (greedy tokens); ExportError
    above `tolerance` or when the graph does not fit the model (layers, heads, vocabulary)."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(graph))
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError
        raise ExportError(f"the GPT's ONNX graph is invalid ({first_line(exc)})") from exc
    try:
        runtime = OnnxDecoder(graph, model.vocab_size, model.config.block_size)
    except ValueError as exc:
        raise ExportError(f"the ONNX graph does not fit the model ({exc})") from exc
    config = model.config
    got = (runtime.n_layer, runtime.n_head, runtime.head_dim)
    want = (config.n_layer, config.n_head, config.n_embd // config.n_head)
    if got != want:
        raise ExportError(
            "the ONNX graph has {} layers of {} heads of size {}; the model has {} of {} of "
            "size {}".format(*got, *want)
        )
    steps = max(0, min(steps, config.block_size - 1))
    prompt_length = max(1, min(prompt_length, config.block_size - steps))
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, model.vocab_size, size=(batch, prompt_length), dtype=np.int64)
    param = next(model.parameters())
    training = model.training
    model.eval()
    diff, past, cache = 0.0, None, None
    try:
        with torch.inference_mode():
            for _ in range(steps + 1):
                logits, past = model(torch.from_numpy(ids).to(param.device), past)
                got, cache = runtime.forward(ids, cache)
                want = logits.float().cpu().numpy()
                diff = max(diff, float(np.abs(got - want).max()))
                ids = want[:, -1].argmax(axis=-1)[:, None]  # (batch, 1): the greedy next tokens
    except Exception as exc:  # onnxruntime's errors, e.g. a cache of other heads or head size
        raise ExportError(
            f"ONNX Runtime cannot run the GPT's graph ({first_line(exc)[:300]})"
        ) from exc
    finally:
        model.train(training)
    if not diff <= tolerance:  # NaN fails too
        raise ExportError(
            f"ONNX Runtime's logits differ from PyTorch's by {diff:.2e} (tolerance "
            f"{tolerance:.0e}) over a {prompt_length}-token prompt and {steps} decode steps; "
            "is the graph exported from this model?"
        )
    return diff


__all__ = ["TOLERANCE", "export_gpt", "verify_gpt_onnx"]

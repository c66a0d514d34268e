"""ONNX export of a sequence-to-sequence module as two graphs, its encoder and one decoder step,
verified against PyTorch; `OnnxSeq2SeqDecoder` decodes with them on ONNX Runtime and numpy
alone (importing this module loads no torch: the export imports it when called).

The encoder graph maps `source_ids` (batch, source) int64 and `source_mask` (batch, source)
bool (True at real tokens) to the module's memory, `memory_<i>`, and its decoder state before
the first step, `initial_past_<j>`. The decoder graph maps `tokens` (batch, 1) int64, the
`memory_<i>`, `source_mask`, the state `past_<j>` and `position` (batch,) int64 (the target
tokens before each token) to `logits` (batch, vocab) float32 and the new state `present_<j>`.
An input the step never reads (a recurrent model's position) is left out of its graph.

Axes are found by running the module before the export: on batches of 2 and 3 sources of
different lengths (the axis that follows the length is `source`), and one step further (the
axis that grows is `past` in a past tensor, `total` in a present one: a Transformer's
self-attention keys and values). Dimension 0 is `batch` everywhere. Both graphs carry the
module's ids, vocabulary sizes and limits as JSON metadata under METADATA_KEY.

The export uses torch.onnx's TorchScript-based exporter, as `ladder.export.gpt_onnx` does;
`verify_seq2seq_onnx` checks the graphs against the module.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ladder.errors import first_line
from ladder.export.onnx import OPSET, ExportError, _quiet_c_stderr, cpu_session
from ladder.generate.seq2seq_steps import StepDecoder, changed_axes

TOLERANCE = 1e-4  # max |logit difference|, ONNX Runtime vs PyTorch
METADATA_KEY = "ladder_seq2seq"
SOURCE_IDS, SOURCE_MASK = "source_ids", "source_mask"
TOKENS, POSITION, LOGITS = "tokens", "position", "logits"
MODULE_FIELDS = (
    "pad_id",
    "bos_id",
    "eos_id",
    "source_vocab_size",
    "vocab_size",
    "max_source_length",
    "max_target_length",
)


def names(prefix: str, count: int) -> list[str]:
    """`count` tensor names: prefix_0, prefix_1, ..."""
    return [f"{prefix}_{i}" for i in range(count)]


def export_seq2seq(module: Any) -> tuple[bytes, bytes]:
    """The ONNX bytes of a seq2seq module's encoder graph and decoder step graph (dynamic
    batch, source and past axes); ExportError when torch.onnx cannot export it."""
    import torch

    missing = [
        f for f in (*MODULE_FIELDS, "encode", "initial_past", "step") if not hasattr(module, f)
    ]
    if missing:
        raise ExportError(
            f"{type(module).__name__} is not a seq2seq module: it lacks {', '.join(missing)}"
        )
    meta = {field: int(getattr(module, field)) for field in MODULE_FIELDS}
    training = module.training
    module.eval()
    try:
        with torch.no_grad():
            shapes = _probe(module)
            traced = _sample(module, batch=2, length=shapes.lengths[0], steps=shapes.steps)
            graphs = _export(module, shapes, traced)
    finally:
        module.train(training)
    return _with_metadata(graphs[0], meta), _with_metadata(graphs[1], meta)


class _Shapes:
    """The axes of a module's tensors, from runs on two batch sizes and source lengths."""

    def __init__(self, module: Any, lengths: tuple[int, int], steps: int) -> None:
        self.lengths, self.steps = lengths, steps
        a = _sample(module, batch=2, length=lengths[0], steps=steps)
        b = _sample(module, batch=3, length=lengths[1], steps=steps)
        later = _step(module, *a, position=steps)[1]  # a's past, one step further
        memory_a, memory_b = _shapes(a[2]), _shapes(b[2])
        past_a, past_b = _shapes(a[3]), _shapes(b[3])
        for what, (x, y) in {"memory": (memory_a, memory_b), "past": (past_a, past_b)}.items():
            if any(s[0] != 2 or t[0] != 3 for s, t in zip(x, y, strict=True)):
                raise ExportError(f"the module's {what} tensors must be batch-first")
        self.n_memory, self.n_past = len(memory_a), len(past_a)
        self.memory_source = changed_axes(memory_a, memory_b)
        self.past_source = changed_axes(past_a, past_b)
        self.past_time = changed_axes(past_a, _shapes(later))


def _probe(module: Any) -> _Shapes:
    longest = int(module.max_source_length)
    lengths = (max(1, min(3, longest - 1)), min(5, longest))  # unequal unless longest is 1
    steps = max(0, min(2, int(module.max_target_length) - 2))  # a step after it still fits
    try:
        return _Shapes(module, lengths, steps)
    except ExportError:
        raise
    except Exception as exc:  # the module's own errors, of any type
        raise ExportError(f"cannot run the module's encode and step ({first_line(exc)})") from exc


def _shapes(tensors: tuple[Any, ...]) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in tensors]


def _sample(module: Any, batch: int, length: int, steps: int) -> tuple[Any, ...]:
    """(src, src_mask, memory, past after `steps` greedy steps) of random sources, the last
    one shorter (padding masked)."""
    import torch

    generator = torch.Generator().manual_seed(batch * 100 + length)
    src = torch.randint(0, int(module.source_vocab_size), (batch, length), generator=generator)
    src_mask = torch.ones((batch, length), dtype=torch.bool)
    src_mask[-1, max(1, length - 1) :] = False
    device = next(module.parameters()).device
    src = src.masked_fill(~src_mask, int(module.pad_id)).to(device)
    src_mask = src_mask.to(device)
    memory = tuple(module.encode(src, src_mask))
    past = tuple(module.initial_past(memory, src_mask))
    tokens = torch.full((batch, 1), int(module.bos_id), dtype=torch.long, device=device)
    for position in range(steps):
        logits, past = _step(module, src, src_mask, memory, past, tokens, position)
        tokens = logits.argmax(dim=-1, keepdim=True)
    return src, src_mask, memory, past, tokens


def _step(
    module: Any,
    src: Any,
    src_mask: Any,
    memory: tuple[Any, ...],
    past: tuple[Any, ...],
    tokens: Any,
    position: int,
) -> tuple[Any, tuple[Any, ...]]:
    import torch

    where = torch.full((len(src),), position, dtype=torch.long, device=src.device)
    logits, present = module.step(tokens, memory, src_mask, past, where)
    return logits, tuple(present)


def _graph_modules(module: Any, n_memory: int, n_past: int) -> tuple[Any, Any]:
    """torch modules with flat tensor inputs and outputs for the two graphs."""
    from torch import nn

    class Encoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, src: Any, src_mask: Any) -> tuple[Any, ...]:
            memory = tuple(self.module.encode(src, src_mask))
            return (*memory, *self.module.initial_past(memory, src_mask))

    class Step(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.module = module

        def forward(self, tokens: Any, *inputs: Any) -> tuple[Any, ...]:
            memory, src_mask = inputs[:n_memory], inputs[n_memory]
            past, position = inputs[n_memory + 1 : n_memory + 1 + n_past], inputs[-1]
            logits, present = self.module.step(tokens, memory, src_mask, past, position)
            return (logits, *present)

    return Encoder(), Step()


def _export(module: Any, shapes: _Shapes, traced: tuple[Any, ...]) -> tuple[bytes, bytes]:
    import torch

    src, src_mask, memory, past, tokens = traced
    memory_names = names("memory", shapes.n_memory)
    past_in, past_out = names("past", shapes.n_past), names("present", shapes.n_past)
    initial = names("initial_past", shapes.n_past)
    batch_source = {0: "batch", 1: "source"}
    memory_axes = {
        name: _axes(source=axis)
        for name, axis in zip(memory_names, shapes.memory_source, strict=True)
    }
    encoder_axes = {SOURCE_IDS: batch_source, SOURCE_MASK: batch_source, **memory_axes}
    decoder_axes = {TOKENS: {0: "batch"}, SOURCE_MASK: batch_source, POSITION: {0: "batch"}}
    decoder_axes.update({LOGITS: {0: "batch"}, **memory_axes})
    for j, (source, time) in enumerate(zip(shapes.past_source, shapes.past_time, strict=True)):
        encoder_axes[initial[j]] = _axes(source, time, "past")
        decoder_axes[past_in[j]] = _axes(source, time, "past")
        decoder_axes[past_out[j]] = _axes(source, time, "total")
    encoder, step = _graph_modules(module, shapes.n_memory, shapes.n_past)
    position = torch.full((len(src),), shapes.steps, dtype=torch.long, device=src.device)
    return (
        _onnx_bytes(
            encoder,
            (src, src_mask),
            [SOURCE_IDS, SOURCE_MASK],
            [*memory_names, *initial],
            encoder_axes,
            "encoder",
        ),
        _onnx_bytes(
            step,
            (tokens, *memory, src_mask, *past, position),
            [TOKENS, *memory_names, SOURCE_MASK, *past_in, POSITION],
            [LOGITS, *past_out],
            decoder_axes,
            "decoder step",
        ),
    )


def _axes(source: int | None = None, time: int | None = None, name: str = "") -> dict[int, str]:
    axes = {0: "batch"}
    if source is not None:
        axes[source] = "source"
    if time is not None:
        axes[time] = name
    return axes


def _onnx_bytes(
    graph: Any,
    args: tuple[Any, ...],
    inputs: list[str],
    outputs: list[str],
    axes: dict[str, dict[int, str]],
    what: str,
) -> bytes:
    import torch

    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings(), _quiet_c_stderr():
            # the TorchScript-based exporter, as for the GPT: deprecated, but the dynamo one
            # needs onnxscript, and verify_seq2seq_onnx checks the result
            warnings.simplefilter("ignore")
            torch.onnx.export(
                graph,
                args,
                buffer,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types for an unsupported op
        raise ExportError(f"cannot export the {what} to ONNX ({first_line(exc)})") from exc
    return buffer.getvalue()


def _with_metadata(graph: bytes, meta: dict[str, Any]) -> bytes:
    """The graph with `meta` as JSON under METADATA_KEY in its metadata."""
    import onnx

    proto = onnx.load_from_string(graph)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, json.dumps(meta)
    return proto.SerializeToString()


class OnnxSeq2SeqDecoder(StepDecoder):
    """A `Seq2SeqDecoder` over the two graphs of `export_seq2seq` on ONNX Runtime (numpy
    states, no torch).

    Args:
        encoder_path, decoder_path: the graphs' .onnx files (or their bytes).
        vocab_size: the target vocabulary (the width of the logits).
        bos_id, eos_id: the decoder's start token and the end of a target.
        max_source_length, max_target_length: the model's limits (the graphs' at most).
        threads: ONNX Runtime's intra-op threads per session (None: its defaults).
    """

    def __init__(
        self,
        encoder_path: str | Path | bytes,
        decoder_path: str | Path | bytes,
        vocab_size: int,
        bos_id: int,
        eos_id: int,
        max_source_length: int,
        max_target_length: int,
        threads: int | None = 1,
    ) -> None:
        self.encoder = cpu_session(encoder_path, threads)
        self.decoder = cpu_session(decoder_path, threads)
        meta = json.loads(
            self.encoder.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "null")
        )
        outputs = [o for o in self.encoder.get_outputs() if o.name.startswith("memory_")]
        if meta is None or not outputs:
            raise ValueError(
                "not a seq2seq encoder graph: it lacks the metadata and memory_<i> outputs of "
                "ladder.export.seq2seq_onnx"
            )
        self.vocab_size, self.bos_id, self.eos_id = vocab_size, bos_id, eos_id
        self.source_vocab_size = meta.get("source_vocab_size")
        for name, value, limit in (
            ("max_source_length", max_source_length, meta.get("max_source_length")),
            ("max_target_length", max_target_length, meta.get("max_target_length")),
        ):
            if not 1 <= value <= (limit or value):
                raise ValueError(f"{name} must be in [1, {limit}] (the graphs'); got {value}")
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        width = self.decoder.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != vocab_size:
            raise ValueError(f"vocab_size={vocab_size}, but the graph's logits have {width}")
        self.source_axes = tuple(
            o.shape.index("source") if "source" in o.shape else None for o in outputs
        )
        self.n_memory = len(outputs)
        self._decoder_inputs = {i.name for i in self.decoder.get_inputs()}

    def run_encoder(
        self, ids: np.ndarray, mask: np.ndarray
    ) -> tuple[tuple[Any, ...], Any, tuple[Any, ...]]:
        """The encoder graph's memory and initial past for padded ids and their mask."""
        out = self.encoder.run(None, {SOURCE_IDS: ids, SOURCE_MASK: mask})
        return tuple(out[: self.n_memory]), mask, tuple(out[self.n_memory :])

    def run_step(
        self,
        tokens: np.ndarray,
        memory: tuple[Any, ...],
        src_mask: Any,
        past: tuple[Any, ...],
        positions: np.ndarray,
    ) -> tuple[np.ndarray, tuple[Any, ...]]:
        """One run of the decoder graph."""
        feed = {TOKENS: tokens, SOURCE_MASK: src_mask, POSITION: positions}
        feed.update(zip(names("memory", len(memory)), memory, strict=True))
        feed.update(zip(names("past", len(past)), past, strict=True))
        used = {name: value for name, value in feed.items() if name in self._decoder_inputs}
        logits, *present = self.decoder.run(None, used)
        return logits, tuple(present)

    def concat(self, parts: list[Any]) -> Any:
        """The arrays joined on the batch axis (one alone is not copied)."""
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def pad(self, array: Any, axis: int, length: int) -> Any:
        """The array padded with zeros (False) at the end of `axis` up to `length`."""
        widths = [(0, 0)] * array.ndim
        widths[axis] = (0, length - array.shape[axis])
        return np.pad(array, widths)


def verify_seq2seq_onnx(
    module: Any,
    encoder_graph: bytes,
    decoder_graph: bytes,
    steps: int = 4,
    seed: int = 0,
    tolerance: float = TOLERANCE,
) -> float:
    """The max |logit difference| between PyTorch and ONNX Runtime over `steps` greedy decoder
    steps of three random sources of different lengths; ExportError above `tolerance` or when
    the graphs do not run."""
    import onnx
    import torch

    for what, graph in (("encoder", encoder_graph), ("decoder", decoder_graph)):
        try:
            onnx.checker.check_model(onnx.load_from_string(graph))
        except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError
            raise ExportError(f"the {what} graph is invalid ({first_line(exc)})") from exc
    longest, limit = int(module.max_source_length), int(module.max_target_length)
    rng = np.random.default_rng(seed)
    sources = [
        rng.integers(0, int(module.source_vocab_size), size=n).tolist()
        for n in (longest, max(1, longest // 2), 1)
    ]
    src = torch.zeros((len(sources), longest), dtype=torch.long)
    src_mask = torch.zeros((len(sources), longest), dtype=torch.bool)
    for row, ids in enumerate(sources):
        src[row, : len(ids)], src_mask[row, : len(ids)] = torch.tensor(ids), True
    src = src.to(next(module.parameters()).device)
    src_mask = src_mask.to(src.device)
    training = module.training
    module.eval()
    diff = 0.0
    try:
        runtime = OnnxSeq2SeqDecoder(
            encoder_graph,
            decoder_graph,
            int(module.vocab_size),
            int(module.bos_id),
            int(module.eos_id),
            longest,
            limit,
        )
        with torch.no_grad():
            memory = tuple(module.encode(src, src_mask))
            past = tuple(module.initial_past(memory, src_mask))
            tokens = [int(module.bos_id)] * len(sources)
            got, states = runtime.start(runtime.encode(sources))
            for position in range(min(steps, limit)):
                if position:
                    got, states = runtime.decode(tokens, states)
                fed = torch.tensor(tokens, device=src.device)[:, None]  # (batch, 1)
                where = torch.full((len(sources),), position, device=src.device)
                logits, past = module.step(fed, memory, src_mask, past, where)
                want = logits.float().cpu().numpy()
                diff = max(diff, float(np.abs(got - want).max()))
                tokens = want.argmax(axis=-1).tolist()
    except ExportError:
        raise
    except Exception as exc:  # onnxruntime's errors, a graph of another model
        raise ExportError(f"ONNX Runtime cannot run the graphs ({first_line(exc)[:300]})") from exc
    finally:
        module.train(training)
    if not diff <= tolerance:  # NaN fails too
        raise ExportError(
            f"ONNX Runtime's logits differ from PyTorch's by {diff:.2e} (tolerance "
            f"{tolerance:.0e}) over {steps} decoder steps; are the graphs exported from "
            "this module?"
        )
    return diff


__all__ = [
    "METADATA_KEY",
    "TOLERANCE",
    "OnnxSeq2SeqDecoder",
    "export_seq2seq",
    "names",
    "verify_seq2seq_onnx",
]

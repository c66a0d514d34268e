"""int8 quantization of a trained neural model, three ways (`QuantizeConfig`):

- ONNX Runtime, dynamic (`<model>+int8`): the weights of MatMul/Gemm, Conv and recurrent ops of
  model.onnx become int8 and activations are quantized on the fly; no calibration data.
- ONNX Runtime, static (`<model>+int8-static`): activations too, in QDQ format with per-channel
  int8 weights, their scales calibrated on preprocessed training rows. For float inputs (images,
  tables); token-id text models are refused (their int64 ids need no calibration: use dynamic).
- torch, dynamic (`<model>+int8-torch`): `torch.ao.quantization.quantize_dynamic` of the Linear,
  LSTM and GRU layers. The artifact has no model.onnx and predicts with torch only.

The torch variant keeps no pickles: its int8 weights are saved in `ladder.export.int8`'s
safetensors format.

Every variant keeps the original's preprocessing and its manifest records a `compression`
entry (method, backend, mode, weights, variant_of, size_ratio; calibration_rows when static).
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ladder.compress.variant import CompressContext, Variant
from ladder.config import QuantizeConfig
from ladder.data import preprocessor_from_json
from ladder.errors import LadderError
from ladder.export.artifact import (
    INT8_WEIGHTS,
    NEURAL_WEIGHTS,
    manifest_body,
    neural_module,
    read_manifest,
    write_artifact,
)
from ladder.export.int8 import dynamic_int8, int8_state
from ladder.export.onnx import INPUT, ONNX_MODEL
from ladder.export.s2s_artifact import DECODER_GRAPH as S2S_DECODER
from ladder.export.s2s_artifact import ENCODER_GRAPH as S2S_ENCODER
from ladder.io import save_tensors
from ladder.registry import get_spec

# ops of a dynamically quantized graph: their presence shows that something was quantized
_INTEGER_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM"}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}  # the same for a static (QDQ) graph
_CALIBRATION_BATCH = 64


def quantize(method: QuantizeConfig, context: CompressContext, model: str) -> Variant:
    """The int8 variant of `model` that `method` asks for, written into the run folder."""
    name = method.variant_name(model)
    source, target = context.artifact(model), context.artifact(name)
    if context.data.task in ("generation", "seq2seq") and (method.backend, method.mode) != (
        "onnxruntime",
        "dynamic",
    ):
        raise LadderError(
            f"{name}: a {context.data.task} model is quantized by ONNX Runtime, dynamically "
            "(its graphs with past states); set backend: onnxruntime and mode: dynamic"
        )
    if context.data.task == "seq2seq":
        info = quantize_seq2seq_artifact(source, target, model)
    elif method.backend == "torch":
        _refuse_numpy_layers(name, model, context.entries[model].type)
        info = quantize_torch_artifact(source, target, model)
    elif method.mode == "static":
        train = context.data.splits.train
        rows = train.subset(np.arange(min(method.calibration_rows, len(train)))).X
        info = quantize_static_artifact(source, target, model, rows)
    else:
        info = quantize_artifact(source, target, model)
    return Variant(
        name, model, context.entries[model].type, details={"size_ratio": info["size_ratio"]}
    )


def _refuse_numpy_layers(name: str, model: str, model_type: str) -> None:
    """torch's quantization swaps PyTorch layers, which a scratch rung's NumPy network lacks."""
    twin = get_spec(model_type).pytorch_twin
    if twin is not None:
        raise LadderError(
            f"{name}: {model} is a {model_type} model, whose layers are NumPy code, and torch's "
            "quantization replaces PyTorch layers; use backend onnxruntime (it quantizes the "
            f"exported graph), or quantize a {twin} model with backend torch"
        )


# ----------------------------------------------------------------------------- ONNX Runtime


def quantize_artifact(source: Path, target: Path, name: str) -> dict[str, Any]:
    """Write the dynamic int8 variant of the artifact `source` to `target` (atomically);
    returns the manifest's "compression" entry. LadderError when there is nothing to quantize."""
    manifest = _onnx_manifest(source, name)
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / ONNX_MODEL
        _quantize_dynamic(source / ONNX_MODEL, quantized)
        if not _has_ops(quantized, _INTEGER_OPS):
            raise LadderError(
                f"{name}: nothing to quantize (ONNX Runtime's dynamic int8 covers MatMul, Conv "
                "and recurrent layers; this model has none)"
            )
        info = _onnx_info(manifest, source, quantized, "dynamic")
        _write_onnx_variant(source, target, manifest, quantized, info)
    return info


def quantize_seq2seq_artifact(source: Path, target: Path, name: str) -> dict[str, Any]:
    """Write the dynamic int8 variant of the seq2seq artifact `source` (its encoder and
    decoder graphs, both quantized) to `target`; returns the manifest's "compression" entry.
    LadderError when the artifact has no graphs."""
    manifest = read_manifest(source)
    graphs = (S2S_ENCODER, S2S_DECODER)
    if any(graph not in manifest["files"] for graph in graphs):
        raise LadderError(
            f"{name}: nothing to quantize with ONNX Runtime (the artifact has no encoder and "
            "decoder graphs: ONNX export covers seq2seq_rnn and seq2seq_transformer)"
        )
    with tempfile.TemporaryDirectory() as tmp:
        quantized = [Path(tmp) / graph for graph in graphs]
        for graph, out in zip(graphs, quantized, strict=True):
            _quantize_dynamic(source / graph, out)
        if not all(out.is_file() for out in quantized) or not _has_ops(quantized[1], _INTEGER_OPS):
            raise LadderError(f"{name}: ONNX Runtime found nothing to quantize in its graphs")
        before = sum((source / graph).stat().st_size for graph in graphs)
        info = {
            "method": "quantize",
            "backend": "onnxruntime",
            "mode": "dynamic",
            "weights": "int8",
            "variant_of": manifest["name"],
            "size_ratio": sum(out.stat().st_size for out in quantized) / before,
        }

        def write_model(folder: Path) -> list[str]:
            for out in quantized:
                shutil.copy2(out, folder / out.name)
            return list(graphs)

        _write_variant(source, target, manifest, info, write_model)
    return info


def quantize_gpt_onnx(graph: bytes) -> bytes:
    """The dynamic int8 version of a GPT's ONNX graph (`ladder.export.gpt_onnx`): int8 weights
    of its MatMul layers (and 8-bit embedding tables, which ONNX Runtime dequantizes when it
    gathers rows), activations quantized on the fly; same inputs and outputs. LadderError when
    the graph has nothing to quantize."""
    with tempfile.TemporaryDirectory() as tmp:
        source, quantized = Path(tmp) / "gpt.onnx", Path(tmp) / ONNX_MODEL
        source.write_bytes(graph)
        _quantize_dynamic(source, quantized)
        if not _has_ops(quantized, _INTEGER_OPS):
            raise LadderError(
                "nothing to quantize in the GPT's graph (ONNX Runtime's dynamic int8 covers "
                "MatMul layers; this graph has none with constant weights)"
            )
        return quantized.read_bytes()


def _quantize_dynamic(source: Path, target: Path) -> None:
    """ONNX Runtime's dynamic int8 quantization of the graph file `source` into `target`
    (weights int8; activations quantized at run time); no `target` when it refuses the graph."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_onnx_quantizer():
        try:
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        except ValueError:  # e.g. a graph of ai.onnx.ml ops only (trees, linear classifiers)
            target.unlink(missing_ok=True)


def quantize_static_artifact(source: Path, target: Path, name: str, rows: Any) -> dict[str, Any]:
    """Write the static int8 (QDQ) variant of the artifact `source` to `target` (atomically),
    its activation scales calibrated on `rows` (raw training inputs: a DataFrame or an image
    array, preprocessed here by the artifact's own preprocessor); returns the manifest's
    "compression" entry. LadderError for token-id models and when there is nothing to quantize."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    manifest = _onnx_manifest(source, name)
    if manifest["family"] != "neural":
        raise LadderError(
            f"{name}: nothing to quantize (static int8 covers the Conv and MatMul/Gemm layers "
            "of neural models; this is a classical model)"
        )
    if manifest.get("pad_id") is not None:
        raise LadderError(
            f"{name}: static int8 calibrates float inputs and this text model takes token ids; "
            "use mode: dynamic for it"
        )
    preprocess = json.loads((source / "preprocess.json").read_text(encoding="utf-8"))
    features = preprocessor_from_json(preprocess, source).transform(rows)
    features = np.ascontiguousarray(features, dtype=np.float32)  # what OnnxPredictor feeds
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / ONNX_MODEL
        with _quiet_onnx_quantizer():
            quantize_static(
                str(source / ONNX_MODEL),
                str(quantized),
                _calibration_reader(features),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                # 7-bit weights: x86 CPUs without VNNI multiply int8 pairs into saturating int16
                # sums; full-range weights cost LeNet-5 on digits 3.6 accuracy points there
                reduce_range=True,
                activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8,
            )
        if not _has_ops(quantized, _QDQ_OPS):
            raise LadderError(
                f"{name}: nothing to quantize (static int8 covers Conv and MatMul/Gemm layers; "
                "this model has none)"
            )
        info = _onnx_info(manifest, source, quantized, "static")
        info.update(
            calibration_rows=len(features), format="QDQ", per_channel=True, reduce_range=True
        )
        _write_onnx_variant(source, target, manifest, quantized, info)
    return info


def _onnx_manifest(source: Path, name: str) -> dict[str, Any]:
    """The verified manifest of an artifact that has a model.onnx to quantize."""
    manifest = read_manifest(source)
    if ONNX_MODEL not in manifest["files"]:
        why = (manifest.get("onnx") or {}).get("reason", "it has no model.onnx")
        raise LadderError(f"{name}: cannot quantize with onnxruntime ({why})")
    return manifest


def _calibration_reader(features: np.ndarray) -> Any:
    """ONNX Runtime's calibration data: the features in batches of the graph's input."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            starts = range(0, len(features), _CALIBRATION_BATCH)
            self.batches = iter([features[i : i + _CALIBRATION_BATCH] for i in starts])

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: batch}

    return Batches()


@contextlib.contextmanager
def _quiet_onnx_quantizer() -> Iterator[None]:
    """Silence the quantizer's root-logger notes (every skipped node, pre-processing advice)."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _has_ops(graph: Path, ops: set[str]) -> bool:
    """Whether the ONNX file `graph` exists and holds any of `ops`."""
    import onnx

    return graph.is_file() and bool(ops & {n.op_type for n in onnx.load(str(graph)).graph.node})


def _onnx_info(
    manifest: dict[str, Any], source: Path, quantized: Path, mode: str
) -> dict[str, Any]:
    """The "compression" entry of an ONNX Runtime variant."""
    return {
        "method": "quantize",
        "backend": "onnxruntime",
        "mode": mode,
        "weights": "int8",
        "variant_of": manifest["name"],
        "size_ratio": quantized.stat().st_size / (source / ONNX_MODEL).stat().st_size,
    }


def _write_onnx_variant(
    source: Path, target: Path, manifest: dict[str, Any], quantized: Path, info: dict[str, Any]
) -> None:
    """The variant artifact: the original's preprocessing and the quantized model.onnx only."""

    def write_model(folder: Path) -> str:
        shutil.copy2(quantized, folder / ONNX_MODEL)
        return ONNX_MODEL

    _write_variant(source, target, manifest, info, write_model)


def _write_variant(
    source: Path,
    target: Path,
    manifest: dict[str, Any],
    info: dict[str, Any],
    write_model: Callable[[Path], str | list[str]],
    **changes: Any,
) -> None:
    """Write a variant of the artifact `source` (its manifest with `info` and `changes`)."""
    base = manifest_body(manifest)
    base.update(name=target.parent.name, compression=info, **changes)
    preprocess = json.loads((source / "preprocess.json").read_text(encoding="utf-8"))
    extra = (  # a text model's tokenizer.json; a language model's tokenizer is preprocess.json
        {}
        if manifest.get("task") in ("generation", "seq2seq")
        else preprocessor_from_json(preprocess, source).extra_files()
    )
    write_artifact(target, base, preprocess, write_model, extra)


# ----------------------------------------------------------------------------- torch


def quantize_torch_artifact(source: Path, target: Path, name: str) -> dict[str, Any]:
    """Write the torch dynamic int8 variant of the artifact `source` to `target` (atomically);
    returns the manifest's "compression" entry. LadderError when there is nothing to quantize."""
    manifest = read_manifest(source)
    if manifest["family"] != "neural":
        raise LadderError(
            f"{name}: nothing to quantize (torch dynamic int8 covers the Linear, LSTM and GRU "
            "layers of neural models; this is a classical model)"
        )
    if manifest["model_file"] != NEURAL_WEIGHTS:
        raise LadderError(f"{name}: cannot quantize with torch (the artifact has no weights)")
    quantized = dynamic_int8(neural_module(source / NEURAL_WEIGHTS, manifest), name)
    state = int8_state(quantized)
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / INT8_WEIGHTS
        save_tensors(state, weights)
        info = {
            "method": "quantize",
            "backend": "torch",
            "mode": "dynamic",
            "weights": "int8",
            "variant_of": manifest["name"],
            "size_ratio": weights.stat().st_size / (source / NEURAL_WEIGHTS).stat().st_size,
        }
        kept = _architecture_files(source, manifest)

        def write_model(folder: Path) -> list[str]:
            shutil.copy2(weights, folder / INT8_WEIGHTS)
            for file in kept:  # what rebuilds the architecture (a pretrained model's config)
                shutil.copy2(source / file, folder / file)
            return [INT8_WEIGHTS, *kept]

        why = "a torch int8 variant predicts with torch only"
        _write_variant(
            source, target, manifest, info, write_model, onnx={"exported": False, "reason": why}
        )
    return info


def _architecture_files(source: Path, manifest: dict[str, Any]) -> list[str]:
    """The artifact's files that rebuild its module (a pretrained model's config): all but the
    weights, the ONNX graph and the preprocessing's own files."""
    preprocess = json.loads((source / "preprocess.json").read_text(encoding="utf-8"))
    extra = preprocessor_from_json(preprocess, source).extra_files()
    skipped = {"preprocess.json", "labels.json", NEURAL_WEIGHTS, ONNX_MODEL, *extra}
    return [name for name in manifest["files"] if name not in skipped]


__all__ = [
    "quantize",
    "quantize_artifact",
    "quantize_gpt_onnx",
    "quantize_seq2seq_artifact",
    "quantize_static_artifact",
    "quantize_torch_artifact",
]

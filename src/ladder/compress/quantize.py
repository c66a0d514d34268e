"""Dynamic int8 quantization of an artifact's ONNX graph with ONNX Runtime.

Weights of MatMul/Gemm (and the recurrent ops) are stored as int8 and activations are
quantized on the fly, so no calibration data is needed. The variant artifact keeps the
original's preprocessing and predicts with ONNX Runtime only.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ladder.errors import LadderError
from ladder.export.artifact import read_manifest, write_artifact
from ladder.export.onnx import ONNX_MODEL

_WRITTEN_BY_WRITE_ARTIFACT = ("format_version", "model_file", "files", "checksum")
_QUANTIZABLE = {"MatMul", "Gemm", "Conv", "LSTM", "GRU", "RNN", "Attention"}


def quantize_artifact(source: Path, target: Path, name: str) -> dict[str, Any]:
    """Write the int8 variant of the artifact `source` to `target` (atomically); returns the
    manifest's "compression" entry. LadderError when there is nothing to quantize."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    manifest = read_manifest(source)
    if ONNX_MODEL not in manifest["files"]:
        why = (manifest.get("onnx") or {}).get("reason", "it has no model.onnx")
        raise LadderError(f"{name}: cannot quantize with onnxruntime ({why})")
    graph = onnx.load(str(source / ONNX_MODEL))
    ops = {node.op_type for node in graph.graph.node} & _QUANTIZABLE
    if not ops:
        raise LadderError(f"{name}: nothing to quantize (no MatMul, Gemm, Conv or recurrent op)")
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / ONNX_MODEL
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs every skipped node
        try:
            quantize_dynamic(str(source / ONNX_MODEL), str(quantized), weight_type=QuantType.QInt8)
        finally:
            logging.getLogger().setLevel(level)
        info = {
            "method": "quantize",
            "backend": "onnxruntime",
            "mode": "dynamic",
            "weights": "int8",
            "variant_of": manifest["name"],
            "size_ratio": quantized.stat().st_size / (source / ONNX_MODEL).stat().st_size,
        }
        base = {k: v for k, v in manifest.items() if k not in _WRITTEN_BY_WRITE_ARTIFACT}
        base.update(name=target.parent.name, compression=info)
        extra = {
            file: (source / file).read_text(encoding="utf-8")
            for file in manifest["files"]
            if file.endswith(".json")
            and file not in ("preprocess.json", "labels.json")
            and file != "pretrained_config.json"
        }
        preprocess = (source / "preprocess.json").read_text(encoding="utf-8")

        def write_model(folder: Path) -> str:
            shutil.copy2(quantized, folder / ONNX_MODEL)
            return ONNX_MODEL

        write_artifact(target, base, json.loads(preprocess), write_model, extra)
    return info

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

from ladder.data import preprocessor_from_json
from ladder.errors import LadderError
from ladder.export.artifact import manifest_body, read_manifest, write_artifact
from ladder.export.onnx import ONNX_MODEL

# ops of a dynamically quantized graph: their presence shows that something was quantized
_INTEGER_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "ConvInteger", "DynamicQuantizeLSTM"}


def quantize_artifact(source: Path, target: Path, name: str) -> dict[str, Any]:
    """Write the int8 variant of the artifact `source` to `target` (atomically); returns the
    manifest's "compression" entry. LadderError when there is nothing to quantize."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    manifest = read_manifest(source)
    if ONNX_MODEL not in manifest["files"]:
        why = (manifest.get("onnx") or {}).get("reason", "it has no model.onnx")
        raise LadderError(f"{name}: cannot quantize with onnxruntime ({why})")
    with tempfile.TemporaryDirectory() as tmp:
        quantized = Path(tmp) / ONNX_MODEL
        level = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # the quantizer logs every skipped node
        try:
            quantize_dynamic(str(source / ONNX_MODEL), str(quantized), weight_type=QuantType.QInt8)
            ops = {node.op_type for node in onnx.load(str(quantized)).graph.node}
        except ValueError:  # e.g. a graph of ai.onnx.ml ops only (trees, linear classifiers)
            ops = set()
        finally:
            logging.getLogger().setLevel(level)
        if not ops & _INTEGER_OPS:
            raise LadderError(
                f"{name}: nothing to quantize (ONNX Runtime's dynamic int8 covers MatMul, Conv "
                "and recurrent layers; this model has none)"
            )
        info = {
            "method": "quantize",
            "backend": "onnxruntime",
            "mode": "dynamic",
            "weights": "int8",
            "variant_of": manifest["name"],
            "size_ratio": quantized.stat().st_size / (source / ONNX_MODEL).stat().st_size,
        }
        base = manifest_body(manifest)
        base.update(name=target.parent.name, compression=info)
        preprocess = json.loads((source / "preprocess.json").read_text(encoding="utf-8"))
        extra = preprocessor_from_json(preprocess, source).extra_files()  # a tokenizer.json

        def write_model(folder: Path) -> str:
            shutil.copy2(quantized, folder / ONNX_MODEL)
            return ONNX_MODEL

        write_artifact(target, base, preprocess, write_model, extra)
    return info

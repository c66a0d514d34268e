"""ONNX export of a fitted model (torch.onnx for neural models, skl2onnx for classical ones),
verified against the original, and an ONNX Runtime predictor that needs neither torch nor
scikit-learn.

Neural graphs map model input (a dynamic batch axis, and a dynamic sequence axis for token
ids) to logits; classical graphs map float features to class probabilities.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ladder.errors import LadderError, first_line

ONNX_MODEL = "model.onnx"
OPSET = 17
TOLERANCE = 1e-4  # max abs difference of probabilities, ONNX Runtime vs the original model
INPUT, OUTPUT = "input", "output"


class ExportError(LadderError):
    """A model that cannot be exported to ONNX (names the type or op, and what to do)."""


def export_neural(module: Any, sample: np.ndarray) -> bytes:
    """The ONNX bytes of a torch module (eval mode) traced on `sample` (batch, ...)."""
    import torch

    tokens = np.issubdtype(sample.dtype, np.integer)
    axes = {0: "batch", 1: "sequence"} if tokens else {0: "batch"}
    buffer = io.BytesIO()
    module.eval()
    with warnings.catch_warnings(), _quiet_c_stderr():
        # the TorchScript-based exporter is deprecated in favour of the dynamo one, which needs
        # onnxscript; it still exports every ladder model exactly (checked by `verify`)
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(
                module,
                (torch.from_numpy(np.ascontiguousarray(sample)),),
                buffer,
                input_names=[INPUT],
                output_names=[OUTPUT],
                dynamic_axes={INPUT: axes, OUTPUT: {0: "batch"}},
                opset_version=OPSET,
                dynamo=False,
            )
        except Exception as exc:  # the exporter raises many types for an unsupported op
            first = first_line(exc)
            raise ExportError(
                f"cannot export {type(module).__name__} to ONNX ({first}); the artifact still "
                "predicts with the torch backend"
            ) from exc
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_c_stderr() -> Iterator[None]:
    """Discard what C++ code writes to stderr meanwhile (the exporter's shape-inference notes
    about packed sequences); Python exceptions still propagate."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def tfidf_unsupported(model_type: str) -> str:
    """Why a TF-IDF text model has no ONNX graph."""
    return (
        f"{model_type}: skl2onnx cannot convert TF-IDF with character n-grams or scikit-learn's "
        "tokenizer exactly; the artifact predicts with scikit-learn"
    )


def export_classical(estimator: Any, n_features: int, model_type: str) -> bytes:
    """The ONNX bytes of a fitted scikit-learn classifier over `n_features` float features."""
    if "tfidf" in model_type:
        raise ExportError(tfidf_unsupported(model_type))
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    try:
        graph = convert_sklearn(
            estimator,
            initial_types=[(INPUT, FloatTensorType([None, n_features]))],
            options={id(estimator): {"zipmap": False}},
            target_opset={"": OPSET, "ai.onnx.ml": 3},
        )
    except Exception as exc:  # skl2onnx raises many types for unsupported models
        first = first_line(exc)
        raise ExportError(
            f"{model_type}: skl2onnx cannot convert {type(estimator).__name__} ({first[:200]}); "
            "the artifact predicts with scikit-learn"
        ) from exc
    return graph.SerializeToString()


class OnnxPredictor:
    """Class probabilities from a model.onnx with ONNX Runtime (no torch, no scikit-learn)."""

    def __init__(self, model: bytes | str | Path, family: str, pad_id: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        source = str(model) if isinstance(model, Path) else model
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.family, self.pad_id = family, pad_id
        self.output = 1 if family == "classical" else 0  # classical: (labels, probabilities)

    def __call__(self, features: np.ndarray) -> np.ndarray:
        """Probabilities (N, n_classes) of preprocessed features."""
        if self.family == "classical":
            x = np.ascontiguousarray(features.reshape(len(features), -1), dtype=np.float32)
            return self._run(x).astype(np.float64)
        if self.pad_id is None:
            return _softmax(self._run(np.ascontiguousarray(features, dtype=np.float32)))
        ids = np.asarray(features, dtype=np.int64)
        order = np.argsort((ids != self.pad_id).sum(axis=1), kind="stable")
        prob = None
        for start in range(0, len(ids), 256):  # shortest first, each chunk trimmed
            rows = order[start : start + 256]
            chunk = ids[rows]
            longest = int((chunk != self.pad_id).sum(axis=1).max(initial=1))
            part = _softmax(self._run(np.ascontiguousarray(chunk[:, :longest])))
            if prob is None:
                prob = np.empty((len(ids), part.shape[1]))
            prob[rows] = part
        return prob if prob is not None else np.empty((0, 0))

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {INPUT: x})[self.output]


def verify(
    graph: bytes, family: str, pad_id: int | None, features: np.ndarray, expected: np.ndarray
) -> float:
    """Check the graph (onnx.checker) and its probabilities on `features` against `expected`
    (the original model's); returns the max abs difference, ExportError above TOLERANCE."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load_from_string(graph))
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"the exported ONNX graph is invalid ({exc})") from exc
    got = OnnxPredictor(graph, family, pad_id)(features)
    diff = float(np.abs(got - expected).max()) if len(expected) else 0.0
    if not diff <= TOLERANCE:
        raise ExportError(
            f"ONNX Runtime's probabilities differ from the original model's by {diff:.2e} "
            f"(tolerance {TOLERANCE:g}); the artifact keeps predicting with the original"
        )
    return diff


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def export_model(
    model: Any,
    family: str,
    model_type: str,
    features: np.ndarray,
    expected: np.ndarray,
    pad_id: int | None,
) -> tuple[bytes | None, dict[str, Any]]:
    """Export a fitted model (a scikit-learn estimator or a torch module) and verify it on up to
    256 rows of preprocessed `features` whose original probabilities are `expected`.

    Returns (the graph, or None when the model cannot be exported; the manifest's "onnx"
    entry: opset, max_abs_diff and rows checked, or the reason it was not exported).
    """
    rows, want = features[:256], expected[:256]
    try:
        if family == "classical":
            graph = export_classical(model, int(np.prod(features.shape[1:])), model_type)
        else:
            sample = rows[:2]
            if pad_id is not None:  # two real rows, trimmed like a batch
                longest = int((sample != pad_id).sum(axis=1).max(initial=1))
                sample = sample[:, :longest]
            graph = export_neural(model.to("cpu"), sample)
        diff = verify(graph, family, pad_id, rows, want)
    except ExportError as exc:
        return None, {"exported": False, "reason": str(exc)}
    return graph, {
        "exported": True,
        "opset": OPSET,
        "max_abs_diff": diff,
        "rows_checked": len(rows),
    }

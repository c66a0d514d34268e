"""Loading a generation artifact: its verified manifest, its tokenizer (preprocess.json) and
its model as a `TextGenerator` that continues prompts.

Backends: "torch" (a network's safetensors weights, or a causal LM's transformers folder),
"onnxruntime" (a GPT's model.onnx with its KV cache; needs no torch) and "numpy" (the n-gram
model). Nothing is unpickled and no code from the artifact runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ladder.data.lm_tokenizers import tokenizer_from_json
from ladder.errors import ArtifactError
from ladder.export.artifact import NEURAL_WEIGHTS, read_manifest
from ladder.export.onnx import ONNX_MODEL
from ladder.export.onnx_decoder import OnnxDecoder
from ladder.generate.decoders import NgramDecoder, TorchDecoder
from ladder.generate.generator import TextGenerator
from ladder.models.ngram import KneserNey
from ladder.registry import get_spec

WEIGHTS = NEURAL_WEIGHTS
ONNX_GRAPH = ONNX_MODEL
PRETRAINED_FOLDER = "model"  # a causal LM's merged transformers folder


def is_generation(directory: str | Path) -> bool:
    """Whether the artifact at `directory` is a language model (manifest task generation)."""
    return read_manifest(directory).get("task") == "generation"


def load_generator(
    directory: str | Path, backend: str | None = None, threads: int | None = None
) -> TextGenerator:
    """The generation artifact at `directory`, ready to continue prompts.

    `backend`: None picks torch for networks (onnxruntime for an int8 variant, which has
    only its graph) and numpy for the n-gram model. `threads`: ONNX Runtime's intra-op
    threads."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("task") != "generation":
        raise ArtifactError(f"{directory}: not a generation artifact (task {manifest.get('task')})")
    try:
        tokenizer = tokenizer_from_json(json.loads((directory / "preprocess.json").read_text()))
    except (ValueError, OSError) as exc:
        raise ArtifactError(
            f"{directory / 'preprocess.json'}: unreadable tokenizer ({exc})"
        ) from exc
    model_type = manifest["model_type"]
    native = "numpy" if model_type == "ngram" else "torch"
    only_graph = manifest["model_file"] == ONNX_GRAPH
    backend = backend or ("onnxruntime" if only_graph else native)
    allowed = {native, "onnxruntime"} if ONNX_GRAPH in manifest["files"] else {native}
    if only_graph:
        allowed = {"onnxruntime"}
    if backend not in allowed:
        raise ArtifactError(
            f"backend {backend!r}: this {model_type} artifact decodes with "
            f"{' or '.join(sorted(allowed))}"
        )
    if backend == "onnxruntime":
        decoder = _onnx_decoder(directory, manifest, threads)
    elif model_type == "ngram":
        decoder: Any = NgramDecoder(KneserNey.load(directory))
    else:
        decoder = TorchDecoder(_torch_module(directory, manifest))
    return TextGenerator(decoder, tokenizer, manifest)


def _torch_module(directory: Path, manifest: dict[str, Any]) -> Any:
    """The network of the artifact, weights loaded, in eval mode."""
    model_type = manifest["model_type"]
    spec = get_spec(model_type)
    config = spec.config_cls.model_validate(manifest["model_config"])
    if spec.load_module is not None:  # a pretrained model: its own files hold the architecture
        return spec.load_module(config, directory / PRETRAINED_FOLDER, 0).eval()
    module = spec.builder("generation")(config, (), int(manifest["vocab_size"]))
    return load_weights(module, directory / WEIGHTS, model_type)


def load_weights(module: Any, path: Path, model_type: str) -> Any:
    """`module` (eval mode) with its weights from the safetensors file `path` (tied weights
    saved once); ArtifactError when they do not fit it."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    try:
        load_model(module, str(path))
    except (SafetensorError, RuntimeError) as exc:
        raise ArtifactError(f"{path}: weights do not fit the {model_type} model ({exc})") from exc
    return module.eval()


def _onnx_decoder(directory: Path, manifest: dict[str, Any], threads: int | None) -> OnnxDecoder:
    """The GPT's graph on ONNX Runtime (no torch)."""
    try:
        return OnnxDecoder(
            directory / ONNX_GRAPH,
            int(manifest["vocab_size"]),
            int(manifest["context_length"]),
            threads if threads is not None else 1,
        )
    except ValueError as exc:
        raise ArtifactError(f"{directory / ONNX_GRAPH}: {exc}") from exc

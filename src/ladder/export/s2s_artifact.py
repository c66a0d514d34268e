"""Loading a seq2seq artifact: its verified manifest, its tokenizers (preprocess.json) and its
model as a generator that writes a target text for each source text.

Backends: "torch" (a network's safetensors weights, or a pretrained encoder-decoder's
transformers folder), "onnxruntime" (the encoder and decoder graphs with the decoder's past
states; needs no torch) and "numpy" (the translation memory). Nothing is unpickled and no
code from the artifact runs."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from ladder.config import Config
from ladder.data.lm_tokenizers import tokenizer_from_json
from ladder.data.pair_tokenizers import pair_tokenizer_from_json
from ladder.errors import ArtifactError
from ladder.export.artifact import NEURAL_WEIGHTS, read_manifest
from ladder.export.lm_artifact import load_weights
from ladder.generate.memory_generator import MemoryGenerator
from ladder.generate.seq2seq_generator import Seq2SeqGenerator
from ladder.generate.seq2seq_search import SearchParams
from ladder.models.memory import TranslationMemory
from ladder.registry import get_spec

WEIGHTS = NEURAL_WEIGHTS
ENCODER_GRAPH = "encoder.onnx"
DECODER_GRAPH = "decoder.onnx"
PRETRAINED_FOLDER = "model"  # a pretrained encoder-decoder's merged transformers folder


def is_seq2seq(directory: str | Path) -> bool:
    """Whether the artifact at `directory` is a seq2seq model (manifest task seq2seq)."""
    return read_manifest(directory).get("task") == "seq2seq"


def search_params(config: Config, module: Any) -> SearchParams:
    """The test decoding the config's `evaluate` section asks for (beam search with
    `beam_size` beams, 1: greedy), up to `max_new_tokens` or the model's longest output."""
    cfg = config.evaluate
    longest = int(module.max_target_length)
    return SearchParams(
        beam_size=cfg.beam_size,
        length_penalty=cfg.length_penalty,
        no_repeat_ngram_size=cfg.no_repeat_ngram_size,
        max_new_tokens=min(cfg.max_new_tokens or longest, longest),
    ).check()


def load_translator(
    directory: str | Path, backend: str | None = None, threads: int | None = None
) -> Seq2SeqGenerator | MemoryGenerator:
    """The seq2seq artifact at `directory`, ready to translate.

    `backend`: None picks torch for networks (onnxruntime for an int8 variant, which has only
    its graphs) and numpy for the translation memory. `threads`: ONNX Runtime's intra-op
    threads."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest.get("task") != "seq2seq":
        raise ArtifactError(f"{directory}: not a seq2seq artifact (task {manifest.get('task')})")
    preprocess = _read_json(directory / "preprocess.json")
    model_type = manifest["model_type"]
    if model_type == "memory":
        _check_backend(backend, {"numpy"}, model_type)
        chars = _tokenizer(directory, preprocess, tokenizer_from_json)
        return MemoryGenerator(TranslationMemory.load(directory), chars, manifest)
    tokenizer = _tokenizer(directory, preprocess, pair_tokenizer_from_json)
    only_graphs = manifest["model_file"] == ENCODER_GRAPH
    allowed = {"onnxruntime"} if only_graphs else {"torch"}
    if ENCODER_GRAPH in manifest["files"]:
        allowed.add("onnxruntime")
    backend = backend or ("onnxruntime" if only_graphs else "torch")
    _check_backend(backend, allowed, model_type)
    if backend == "onnxruntime":
        model: Any = _onnx_decoder(directory, manifest, threads)
    else:
        from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder  # noqa: PLC0415 (torch)

        model = TorchSeq2SeqDecoder(_torch_module(directory, manifest))
    search = _search(manifest.get("decoding") or {})
    return Seq2SeqGenerator(model, tokenizer, manifest, search)


def _search(decoding: dict[str, Any]) -> SearchParams:
    names = {f.name for f in fields(SearchParams)}
    return SearchParams(**{k: v for k, v in decoding.items() if k in names}).check()


def _check_backend(backend: str | None, allowed: set[str], model_type: str) -> None:
    if backend is not None and backend not in allowed:
        raise ArtifactError(
            f"backend {backend!r}: this {model_type} artifact decodes with "
            f"{' or '.join(sorted(allowed))}"
        )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (ValueError, OSError) as exc:
        raise ArtifactError(f"{path}: unreadable ({exc})") from exc


def _tokenizer(directory: Path, preprocess: Any, reader: Any) -> Any:
    try:
        return reader(preprocess)
    except ValueError as exc:
        raise ArtifactError(f"{directory / 'preprocess.json'}: {exc}") from exc


def _torch_module(directory: Path, manifest: dict[str, Any]) -> Any:
    """The network of the artifact, weights loaded, in eval mode."""
    model_type = manifest["model_type"]
    spec = get_spec(model_type)
    config = spec.config_cls.model_validate(manifest["model_config"])
    if spec.load_module is not None:  # a pretrained model: its own files hold the architecture
        return spec.load_module(config, directory / PRETRAINED_FOLDER, 0).eval()
    build = spec.builder("seq2seq")
    module = build(config, (int(manifest["source_vocab_size"]),), int(manifest["vocab_size"]))
    return load_weights(module, directory / WEIGHTS, model_type)


def _onnx_decoder(directory: Path, manifest: dict[str, Any], threads: int | None) -> Any:
    """The encoder and decoder graphs on ONNX Runtime (no torch)."""
    from ladder.export.seq2seq_onnx import OnnxSeq2SeqDecoder  # noqa: PLC0415 (onnxruntime)

    ids = manifest["special_ids"]
    try:
        return OnnxSeq2SeqDecoder(
            directory / ENCODER_GRAPH,
            directory / DECODER_GRAPH,
            int(manifest["vocab_size"]),
            int(ids["bos"]),
            int(ids["eos"]),
            int(manifest["max_source_length"]),
            int(manifest["max_target_length"]),
            threads if threads is not None else 1,
        )
    except ValueError as exc:
        raise ArtifactError(f"{directory / ENCODER_GRAPH}: {exc}") from exc

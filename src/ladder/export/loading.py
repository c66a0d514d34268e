"""`ladder.load`: any artifact, by what its manifest says it is."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.export.artifact import LoadedModel, read_manifest
from ladder.export.artifact import load as load_predictor
from ladder.export.lm_artifact import load_generator
from ladder.export.s2s_artifact import load_translator
from ladder.generate.generator import TextGenerator
from ladder.generate.memory_generator import MemoryGenerator
from ladder.generate.seq2seq_generator import Seq2SeqGenerator


def load(
    directory: str | Path,
    backend: str | None = None,
    threads: int | None = None,
    arena: bool = True,
) -> LoadedModel | TextGenerator | Seq2SeqGenerator | MemoryGenerator:
    """A verified artifact, loaded: a `TextGenerator` (`.generate(prompt, ...)`,
    `.stream(...)`) for a language model, a seq2seq generator (`.translate(sources)`,
    `.generate(source)`, `.stream(source)`) for a seq2seq model, else a `LoadedModel` that
    predicts (see `ladder.export.artifact.load` for the backends). `arena` is ONNX Runtime's
    CPU memory arena for predictors."""
    manifest: dict[str, Any] = read_manifest(directory)
    if manifest.get("task") == "generation":
        return load_generator(directory, backend, threads)
    if manifest.get("task") == "seq2seq":
        return load_translator(directory, backend, threads)
    return load_predictor(directory, backend, threads, arena)

"""One rung of a seq2seq ladder: the training pairs -> the entry's tokenizers and token ids ->
a fitted model (the translation memory, or a network trained with teacher forcing by the
Trainer's step mode) -> test outputs with the configured search, scored with BLEU, chrF, ROUGE
and exact match -> a saved artifact (`ladder.export.s2s_artifact`) in the run folder.

It writes the same files as the other rungs (metrics.json with the config hash,
test_predictions.csv, plots, the artifact), so the cache, the leaderboard, the report,
compression and serving treat it alike."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from ladder import __version__
from ladder.config import Config, ModelEntry
from ladder.console import say
from ladder.data.lm_tokenizers import CharTokenizer
from ladder.data.pair_tokenizers import PairTokenizer
from ladder.errors import ConfigError, LadderError, TrainingInterrupted
from ladder.evaluate.seq2seq import signatures
from ladder.export.artifact import write_artifact
from ladder.export.onnx import OPSET as ONNX_OPSET
from ladder.export.s2s_artifact import (
    DECODER_GRAPH,
    ENCODER_GRAPH,
    PRETRAINED_FOLDER,
    WEIGHTS,
    search_params,
)
from ladder.export.seq2seq_onnx import export_seq2seq, verify_seq2seq_onnx
from ladder.generate.memory_generator import MemoryGenerator
from ladder.generate.seq2seq_generator import Seq2SeqGenerator
from ladder.generate.seq2seq_torch import TorchSeq2SeqDecoder
from ladder.io import atomic_write_text
from ladder.models.memory import TranslationMemory
from ladder.models.pretrained_seq2seq import PretrainedSeq2Seq, model_problem
from ladder.registry import get_spec
from ladder.run_folder import model_dir as model_folder
from ladder.runner.cache import config_hash
from ladder.runner.lm_fit import train_by_steps
from ladder.runner.prepare import PreparedData
from ladder.runner.ranking import remove_variants
from ladder.runner.rung import TrainResult, resolve_device, resolve_model_path, seed_everything
from ladder.tasks import get_task
from ladder.train.pair_batches import PairBatches

SPECIAL_SIDE = ("source", "target")


def train_s2s_entry(
    config: Config,
    entry: ModelEntry,
    data: PreparedData,
    run_dir: Path,
    resume: bool = False,
    main: bool = True,
    compression: dict[str, Any] | None = None,
) -> TrainResult | None:
    """Train one seq2seq entry on the prepared pairs and write its results under `run_dir`
    (None on torchrun workers other than rank 0, which write nothing)."""
    spec = get_spec(entry.type)
    cache_key = config_hash(config, entry)
    entry = resolve_model_path(config, entry)
    model_dir = model_folder(run_dir, entry.name)
    splits = data.splits
    seed_everything(config.seed)
    if not spec.trains_with_trainer:
        if resume:
            raise LadderError(
                f"--resume: {entry.name} is a translation memory ({entry.type}) and has no "
                "checkpoints; train it without --resume"
            )
        started = time.perf_counter()
        generator = _fit_memory(entry, splits.train)
        fitted_seconds = time.perf_counter() - started
        history: list[dict[str, Any]] = []
        device = "cpu"
    else:
        device = resolve_device(config.device)
        tokenizer = pair_tokenizer(entry, splits.train)
        module = _build(spec, entry, tokenizer)
        train = encode_pairs(tokenizer, splits.train, module, "training", entry.name)
        val = (
            encode_pairs(tokenizer, splits.val, module, "validation", entry.name)
            if splits.val.sources
            else None
        )
        started = time.perf_counter()
        try:
            history = _train_network(config, entry, module, train, val, model_dir, device, resume)
        except TrainingInterrupted as stopped:
            stopped.model = entry.name
            raise
        fitted_seconds = time.perf_counter() - started
        if not main:
            return None
        module.eval()
        generator = Seq2SeqGenerator(
            TorchSeq2SeqDecoder(module, device), tokenizer, search=search_params(config, module)
        )
    task = get_task("seq2seq", config.evaluate.primary)
    sources, references = list(splits.test.sources), list(splits.test.targets)
    outputs = generator.translate(sources)
    metrics = task.evaluate(
        np.asarray(references, dtype=object), outputs, sources, model_dir, history
    )
    metrics.update(
        primary=task.primary,
        train_seconds=round(fitted_seconds, 3),
        params=_n_params(generator),
        train_tokens_per_s=_throughput(history),
        signatures=signatures(),
        decoding=_decoding(generator),
    )
    manifest = _manifest(config, entry, spec.family, generator, metrics, data.info)
    if compression is not None:
        manifest["compression"] = compression
    write_artifact(
        model_dir / "artifact", manifest, _preprocess(generator), _model_writer(generator, manifest)
    )
    metrics["config_hash"] = cache_key
    atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2, default=str))
    remove_variants(run_dir, entry.name)
    return TrainResult(
        entry.name,
        metrics,
        run_dir,
        model_dir,
        model_dir / "artifact",
        fitted_seconds,
        device,
        history,
    )


def evaluate_translator(generator: Any, splits: Any, model_dir: Path, primary: str | None) -> dict:
    """Test metrics and test_predictions.csv in `model_dir` of a loaded seq2seq model (such as
    a compressed variant, which is only ONNX graphs), decoded as its trained model was."""
    task = get_task("seq2seq", primary)
    sources, references = list(splits.test.sources), list(splits.test.targets)
    outputs = generator.translate(sources)
    metrics = task.evaluate(np.asarray(references, dtype=object), outputs, sources, model_dir)
    metrics.update(primary=task.primary, signatures=signatures(), decoding=_decoding(generator))
    return metrics


def pair_tokenizer(entry: ModelEntry, train: Any) -> PairTokenizer:
    """The tokenizers of a network entry: a pretrained model's own, or char / byte-level BPE
    fitted on the training pairs (text.tokenizer; wordpiece, the default, means bpe), one for
    both sides when the model shares its vocabulary (`shared_vocab`)."""
    if entry.type == "pretrained_seq2seq":
        problem = model_problem(entry.params.path)  # what the model is, before its tokenizer
        if problem is not None:
            raise ConfigError([f"models.{entry.name}.path: {problem}"])
        return PairTokenizer.from_pretrained_folder(entry.params.path)
    kind = entry.text.tokenizer
    if kind == "pretrained":
        raise ConfigError(
            [
                f"models.{entry.name}.text.tokenizer: pretrained is for pretrained_seq2seq (its "
                "own tokenizer); use char or bpe"
            ]
        )
    kind = "bpe" if kind == "wordpiece" else kind
    shared = bool(getattr(entry.params, "shared_vocab", False))
    vocab = max(entry.text.vocab_size, 260) if kind == "bpe" else entry.text.vocab_size
    return PairTokenizer.train(kind, list(train.sources), list(train.targets), vocab, shared)


def encode_pairs(
    tokenizer: PairTokenizer, part: Any, module: Any, split: str, name: str
) -> PairBatches:
    """A split's pairs as token ids in batches for the Trainer: sources cut to the model's
    `max_source_length`, targets to `max_target_length` - 1 (room for eos), each cut said."""
    room_source, room_target = module.max_source_length, module.max_target_length - 1
    sources = [tokenizer.source.encode(s) for s in part.sources]
    targets = [tokenizer.target.encode(t) for t in part.targets]
    long_sources = sum(len(s) > room_source for s in sources)
    long_targets = sum(len(t) > room_target for t in targets)
    if long_sources:
        say(
            f"models.{name}: {long_sources:,} {split} source(s) longer than max_source_length "
            f"{module.max_source_length} tokens were truncated"
        )
    if long_targets:
        say(
            f"models.{name}: {long_targets:,} {split} target(s) longer than max_target_length "
            f"{module.max_target_length} tokens (eos included) were truncated"
        )
    sources = [np.asarray(tokenizer.source.truncate(s, room_source), np.int64) for s in sources]
    targets = [np.asarray(t[:room_target], dtype=np.int64) for t in targets]
    target_side = tokenizer.target
    return PairBatches(
        sources, targets, target_side.pad_id, target_side.bos_id, target_side.eos_id, split=split
    )


def _build(spec: Any, entry: ModelEntry, tokenizer: PairTokenizer) -> Any:
    """The entry's network for the tokenizers' vocabularies."""
    build = spec.builder("seq2seq")
    try:
        return build(entry.params, (tokenizer.source.vocab_size,), tokenizer.target.vocab_size)
    except ValueError as exc:
        raise ConfigError([f"models.{entry.name}: {exc}"]) from exc


def _train_network(
    config: Config,
    entry: ModelEntry,
    module: Any,
    train: PairBatches,
    val: PairBatches | None,
    model_dir: Path,
    device: str,
    resume: bool,
) -> list[dict[str, Any]]:
    """Train with the Trainer's step mode over random batches of pairs (teacher forcing);
    returns the history (one row per evaluation interval)."""
    identity = {
        "model_type": entry.type,
        "model_config": entry.params.model_dump(mode="json"),
        "vocab_size": int(module.vocab_size),
        "source_vocab_size": int(module.source_vocab_size),
    }
    return train_by_steps(config, entry, module, train, val, identity, model_dir, device, resume)


def _fit_memory(entry: ModelEntry, train: Any) -> MemoryGenerator:
    """The translation memory of the training pairs, with the character tokenizer its
    stream is spelled with."""
    memory = TranslationMemory(entry.params)
    memory.fit(list(train.sources), list(train.targets))
    chars = CharTokenizer.train([*train.sources, *train.targets])
    return MemoryGenerator(memory, chars)


def _n_params(generator: Any) -> int:
    if isinstance(generator, MemoryGenerator):
        return int(generator.memory.n_params())
    module = generator.model.module
    if isinstance(module, PretrainedSeq2Seq):
        return int(module.total_params())
    return int(sum(p.numel() for p in module.parameters()))


def _throughput(history: list[dict[str, Any]]) -> float | None:
    """Training target tokens per second (the Trainer's measure)."""
    rates = [row["tokens_per_s"] for row in history if row.get("tokens_per_s")]
    return round(sum(rates) / len(rates), 1) if rates else None


def _decoding(generator: Any) -> dict[str, Any] | None:
    search = getattr(generator, "search", None)
    return None if search is None else asdict(search)


def _preprocess(generator: Any) -> dict[str, Any]:
    """preprocess.json: the tokenizers are all the preprocessing."""
    if isinstance(generator, MemoryGenerator):
        return generator.chars.to_json()
    return generator.tokenizer.to_json()


def _model_writer(generator: Any, manifest: dict[str, Any]) -> Any:
    """What writes the model's files into the artifact (weights first), with the verified
    ONNX graphs of a from-scratch network."""
    if isinstance(generator, MemoryGenerator):
        manifest["onnx"] = {"exported": False, "reason": "a translation memory is a lookup"}
        return generator.memory.save
    module = generator.model.module
    if isinstance(module, PretrainedSeq2Seq):
        manifest["onnx"] = {
            "exported": False,
            "reason": "ONNX export covers seq2seq_rnn and seq2seq_transformer",
        }

        def write_pretrained(folder: Path) -> list[str]:
            written = module.save(folder / PRETRAINED_FOLDER)
            names = sorted(p.name for p in written.iterdir() if p.is_file())
            names.sort(key=lambda n: not n.endswith(".safetensors"))
            return [f"{PRETRAINED_FOLDER}/{name}" for name in names]

        return write_pretrained
    module = module.cpu()
    encoder, decoder = export_seq2seq(module)
    diff = verify_seq2seq_onnx(module, encoder, decoder)
    manifest["onnx"] = {"exported": True, "opset": ONNX_OPSET, "max_abs_diff": diff}

    def write_network(folder: Path) -> list[str]:
        from safetensors.torch import save_model

        save_model(module, str(folder / WEIGHTS))
        (folder / ENCODER_GRAPH).write_bytes(encoder)
        (folder / DECODER_GRAPH).write_bytes(decoder)
        return [WEIGHTS, ENCODER_GRAPH, DECODER_GRAPH]

    return write_network


def _manifest(
    config: Config,
    entry: ModelEntry,
    family: str,
    generator: Any,
    metrics: dict[str, Any],
    data_info: dict[str, Any],
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "name": entry.name,
        "task": "seq2seq",
        "model_type": entry.type,
        "family": family,
        "model_config": entry.params.model_dump(mode="json"),
        "input": {"kind": "text", "name": "text_input", "column": config.data.source_column},
        "labels": [],
        "metrics": {k: metrics.get(k) for k in get_task("seq2seq").headline},
        "primary": metrics.get("primary"),
        "data_fingerprint": data_info["sha256"],
        "ladder_version": __version__,
    }
    if isinstance(generator, MemoryGenerator):
        return {**manifest, "tokenizer": "char"}
    model = generator.model
    return {
        **manifest,
        "tokenizer": generator.tokenizer.kind,
        "source_vocab_size": int(model.module.source_vocab_size),
        "vocab_size": int(model.vocab_size),
        "special_ids": {"pad": int(model.module.pad_id), "bos": model.bos_id, "eos": model.eos_id},
        "max_source_length": model.max_source_length,
        "max_target_length": model.max_target_length,
        "decoding": asdict(generator.search),
    }

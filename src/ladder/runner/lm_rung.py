"""One rung of a generation ladder: the corpus -> the entry's tokenizer and token files ->
a fitted language model -> bits per byte on the test text, samples from fixed prompts -> a
saved artifact (`ladder.export.lm_artifact`) in the run folder.

It is the language-model counterpart of `ladder.runner.rung.train_entry` and writes the same
files (metrics.json with the config hash, test_predictions.csv, plots, the artifact), so the
cache, the leaderboard, the report, compression and serving treat both alike."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ladder import __version__
from ladder.config import Config, ModelEntry
from ladder.data.lm_splits import CorpusSplits, scoring_segments
from ladder.errors import DataError, LadderError, TrainingInterrupted
from ladder.export.artifact import write_artifact
from ladder.export.gpt_onnx import export_gpt, verify_gpt_onnx
from ladder.export.lm_artifact import ONNX_GRAPH, load_generator
from ladder.export.onnx import OPSET as ONNX_OPSET
from ladder.generate.decoders import NgramDecoder, TorchDecoder
from ladder.generate.generator import TextGenerator
from ladder.generate.stream import SamplingParams
from ladder.io import atomic_write_text
from ladder.models.gpt import GPT
from ladder.registry import get_spec
from ladder.run_folder import model_dir as model_folder
from ladder.runner.cache import config_hash
from ladder.runner.lm_data import (
    TokenFile,
    TokenStream,
    entry_tokenizer,
    scoring_stream,
    write_token_file,
)
from ladder.runner.lm_fit import FittedNetwork, FittedNgram, GraphScorer, fit_language_model
from ladder.runner.prepare import PreparedData
from ladder.runner.ranking import remove_variants
from ladder.runner.rung import TrainResult, resolve_device, resolve_model_path, seed_everything
from ladder.tasks.generation import GENERATION

SAMPLES = "samples.json"


def train_lm_entry(
    config: Config,
    entry: ModelEntry,
    data: PreparedData,
    run_dir: Path,
    resume: bool = False,
    main: bool = True,
    compression: dict[str, Any] | None = None,
) -> TrainResult | None:
    """Train one language-model entry on the prepared corpus and write its results under
    `run_dir` (None on torchrun workers other than rank 0, which write nothing)."""
    spec = get_spec(entry.type)
    cache_key = config_hash(config, entry)
    entry = resolve_model_path(config, entry)
    model_dir = model_folder(run_dir, entry.name)
    splits: CorpusSplits = data.splits
    if resume and not spec.trains_with_trainer:
        raise LadderError(
            f"--resume: {entry.name} is an n-gram model ({entry.type}) and has no checkpoints; "
            "train it without --resume"
        )
    device = resolve_device(config.device) if spec.trains_with_trainer else "cpu"
    seed_everything(config.seed)
    tokenizer = entry_tokenizer(entry, splits, config.base_dir)
    with_mask = splits.kind == "prompt_completion"
    tokens = model_dir / "tokens"
    train_file = write_token_file(tokenizer, splits.train, tokens / "train.bin", with_mask)
    val_file = (
        write_token_file(tokenizer, splits.val, tokens / "val.bin", with_mask)
        if splits.val
        else None
    )
    _check_long_enough(entry, train_file, val_file)

    started = time.perf_counter()
    try:
        fitted, history = fit_language_model(
            config, entry, tokenizer.vocab_size, train_file, val_file, model_dir, device, resume
        )
    except TrainingInterrupted as stopped:
        stopped.model = entry.name
        raise
    train_seconds = time.perf_counter() - started
    if not main:
        return None

    test = _scored(scoring_stream(tokenizer, splits.test), "test")
    outputs = GENERATION.predict(fitted, test)
    metrics = GENERATION.evaluate(test.n_bytes, outputs, [test.n_scored], model_dir, history)
    if splits.val:
        val = _scored(scoring_stream(tokenizer, splits.val), "validation")
        val_metrics = GENERATION.metrics(val.n_bytes, fitted.segment_nats(val), [val.n_scored])
        metrics["val_bits_per_byte"] = val_metrics["bits_per_byte"]
        metrics["val_loss"] = val_metrics["loss"]
    metrics.update(
        train_seconds=round(train_seconds, 3),
        params=fitted.n_params(),
        tokenizer=tokenizer.kind,
        vocab_size=tokenizer.vocab_size,
        train_tokens=train_file.n_tokens,
        train_tokens_per_s=_training_throughput(history, train_seconds, train_file),
    )
    generator = TextGenerator(fitted.decoder(), tokenizer)
    samples = write_samples(generator, sample_prompts(config, splits), config, model_dir)

    manifest = _manifest(config, entry, spec.family, tokenizer, fitted, metrics, data.info)
    manifest["samples"] = samples[:1]
    if compression is not None:
        manifest["compression"] = compression
    graph, manifest["onnx"] = _onnx_graph(fitted)

    def write_model(folder: Path) -> list[str]:
        files = fitted.save(folder)
        if graph is not None:
            (folder / ONNX_GRAPH).write_bytes(graph)
            files.append(ONNX_GRAPH)
        return files

    write_artifact(
        model_dir / "artifact",
        manifest,
        tokenizer.to_json(),  # preprocess.json: the tokenizer is all the preprocessing
        write_model,
    )
    metrics["config_hash"] = cache_key
    atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2))
    remove_variants(run_dir, entry.name)
    return TrainResult(
        entry.name,
        metrics,
        run_dir,
        model_dir,
        model_dir / "artifact",
        train_seconds,
        device,
        history,
    )


def evaluate_generator(artifact: Path, splits: CorpusSplits, model_dir: Path) -> dict[str, Any]:
    """Test metrics (bits per byte...) and test_predictions.csv in `model_dir` of a saved
    language model (such as a compressed variant, which is only an ONNX graph), scored on the
    run's test text."""
    generator = load_generator(artifact)
    scorer = _scorer(generator)
    test = _scored(scoring_stream(generator.tokenizer, splits.test), "test")
    metrics = GENERATION.evaluate(
        test.n_bytes, scorer.segment_nats(test), [test.n_scored], model_dir
    )
    metrics.update(tokenizer=generator.tokenizer.kind, vocab_size=generator.tokenizer.vocab_size)
    return metrics


def _scorer(generator: TextGenerator) -> FittedNgram | FittedNetwork | GraphScorer:
    """What scores the text of a loaded generator, as its trained model was scored."""
    decoder, context = generator.decoder, generator.context_length
    if isinstance(decoder, NgramDecoder):
        return FittedNgram(decoder.model, context)
    if isinstance(decoder, TorchDecoder):
        return FittedNetwork(decoder.model, context)
    return GraphScorer(decoder, context)  # an ONNX Runtime decoder


def _onnx_graph(fitted: FittedNgram | FittedNetwork) -> tuple[bytes | None, dict[str, Any]]:
    """A GPT's ONNX graph with its KV cache, verified against PyTorch, and what the manifest
    says of it; other language models have no graph (the reason is recorded)."""
    if not isinstance(fitted, FittedNetwork) or not isinstance(fitted.module, GPT):
        return None, {
            "exported": False,
            "reason": "ONNX export covers the gpt type (a KV-cache graph)",
        }
    module = fitted.module.cpu()
    graph = export_gpt(module)
    max_abs_diff = verify_gpt_onnx(module, graph)
    return graph, {"exported": True, "opset": ONNX_OPSET, "max_abs_diff": max_abs_diff}


def _scored(stream: TokenStream, part: str) -> TokenStream:
    """The stream, when it holds a token to score (a token after the first)."""
    if stream.n_scored == 0:
        raise DataError(
            f"the corpus is too short: its {part} part is {len(stream.ids)} token(s), leaving "
            "nothing to score; add text or change data.split"
        )
    return stream


def _check_long_enough(entry: ModelEntry, train: TokenFile, val: TokenFile | None) -> None:
    """A network needs more tokens than one window in the training and validation parts."""
    block = getattr(entry.params, "block_size", None)
    if block is None or entry.type == "causal_lm":
        return
    for name, part in (("training", train), ("validation", val)):
        if part is not None and part.n_tokens <= block:
            raise DataError(
                f"the corpus is too short for models.{entry.name}: its {name} part has "
                f"{part.n_tokens:,} tokens, fewer than one block of block_size {block} + 1; "
                "add text or lower block_size"
            )


def _training_throughput(
    history: list[dict[str, Any]], seconds: float, train: TokenFile
) -> float | None:
    """Training tokens per second: the Trainer's measure, else the counted tokens over time."""
    rates = [row["tokens_per_s"] for row in history if row.get("tokens_per_s")]
    if rates:
        return round(sum(rates) / len(rates), 1)
    return round(train.n_tokens / seconds, 1) if seconds > 0 else None


def sample_prompts(config: Config, splits: CorpusSplits, n: int = 3) -> list[str]:
    """The config's `evaluate.prompts`, else the starts of `n` test segments spread over the
    test text (a prompt/completion corpus: the first test prompts)."""
    if config.evaluate.prompts:
        return list(config.evaluate.prompts)
    if splits.kind == "prompt_completion":
        return [ex.prompt for ex in splits.test[:n]]
    segments = scoring_segments(splits.test, target=n)
    return [(seg.text.strip().split("\n")[0] or seg.text)[:40] for seg in segments[:n]]


def write_samples(
    generator: TextGenerator, prompts: list[str], config: Config, model_dir: Path
) -> list[dict[str, str]]:
    """Continue each prompt with `evaluate.sample_tokens` tokens (temperature 0.8, top-k 40,
    the run's seed); written to samples.json and returned."""
    params = SamplingParams(
        max_new_tokens=config.evaluate.sample_tokens, temperature=0.8, top_k=40, seed=config.seed
    )
    samples = [
        {"prompt": prompt, "completion": generator.generate(prompt, params)}
        for prompt in prompts
        if prompt
    ]
    atomic_write_text(model_dir / SAMPLES, json.dumps(samples, indent=2, ensure_ascii=False))
    return samples


def _manifest(
    config: Config,
    entry: ModelEntry,
    family: str,
    tokenizer: Any,
    fitted: FittedNgram | FittedNetwork,
    metrics: dict[str, Any],
    data_info: dict[str, Any],
) -> dict[str, Any]:
    context = fitted.block_size if isinstance(fitted, FittedNetwork) else None
    return {
        "name": entry.name,
        "task": "generation",
        "model_type": entry.type,
        "family": family,
        "model_config": entry.params.model_dump(mode="json"),
        "tokenizer": tokenizer.kind,
        "vocab_size": tokenizer.vocab_size,
        "context_length": context,
        "input": {"kind": "text", "name": "text_input"},
        "labels": [],
        "metrics": {k: metrics.get(k) for k in GENERATION.headline},
        "data_fingerprint": data_info["sha256"],
        "ladder_version": __version__,
    }

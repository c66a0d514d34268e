"""Fit one language-model entry: count the n-gram model, or train a network over random
windows of the training token file with the Trainer. Either way the result can score the
test segments, count its parameters, save itself and decode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ladder.config import Config, ModelEntry
from ladder.data.token_windows import scoring_windows
from ladder.errors import ConfigError
from ladder.export.lm_artifact import PRETRAINED_FOLDER, WEIGHTS
from ladder.generate.decoders import NgramDecoder, TorchDecoder
from ladder.models.causal_lm import CausalLM
from ladder.models.ngram import KneserNey
from ladder.registry import get_spec
from ladder.runner.lm_data import TokenFile, TokenStream
from ladder.train import Checkpoint, History, ProgressBar
from ladder.train.lm import token_nats
from ladder.train.lm_batches import TokenWindows
from ladder.train.objective import LanguageModeling
from ladder.train.setup import TrainerSetup


@dataclass
class FittedNgram:
    """A counted n-gram model."""

    model: KneserNey
    block_size: int

    def segment_nats(self, stream: TokenStream) -> Any:
        """Nats spent on each test segment."""
        nats = -self.model.token_log_probs(stream.ids)[1:]
        return stream.per_segment(nats)

    def n_params(self) -> int:
        """The stored n-gram counts."""
        return self.model.n_params()

    def save(self, folder: Path) -> list[str]:
        """The model's JSON header and arrays; returns the file names."""
        return self.model.save(folder)

    def decoder(self) -> NgramDecoder:
        """A decoder over the model."""
        return NgramDecoder(self.model)


@dataclass
class FittedNetwork:
    """A trained torch language model (GPT, RNN LM, causal LM)."""

    module: Any
    block_size: int
    device: str = "cpu"

    def segment_nats(self, stream: TokenStream) -> Any:
        """Nats spent on each test segment (windows of the context sliding by half)."""
        nats = token_nats(self.module, stream.ids, self.block_size, device=self.device)
        return stream.per_segment(nats)

    def n_params(self) -> int:
        """All parameters (a LoRA model: the base model's too, adapters merged)."""
        if isinstance(self.module, CausalLM):
            return self.module.total_params()
        return sum(p.numel() for p in self.module.parameters())

    def save(self, folder: Path) -> list[str]:
        """Weights as safetensors (a causal LM: a transformers folder with merged adapters
        and its tokenizer files); returns the file names, the weights first."""
        if isinstance(self.module, CausalLM):
            written = self.module.save(folder / PRETRAINED_FOLDER)
            names = sorted(p.name for p in written.iterdir() if p.is_file())
            names.sort(key=lambda n: not n.endswith(".safetensors"))
            return [f"{PRETRAINED_FOLDER}/{name}" for name in names]
        from safetensors.torch import save_model

        save_model(self.module.cpu(), str(folder / WEIGHTS))
        return [WEIGHTS]

    def decoder(self) -> TorchDecoder:
        """A decoder over the module (eval mode, CPU)."""
        return TorchDecoder(self.module, "cpu")


@dataclass
class GraphScorer:
    """A language model that is only an ONNX graph (an int8 variant), scored like the rest."""

    decoder: Any  # ladder.export.onnx_decoder.OnnxDecoder
    block_size: int

    def segment_nats(self, stream: TokenStream) -> Any:
        """Nats spent on each test segment (windows of the context sliding by half)."""
        return stream.per_segment(graph_token_nats(self.decoder, stream.ids, self.block_size))


def graph_token_nats(decoder: Any, tokens: np.ndarray, block_size: int) -> np.ndarray:
    """The nats of each token after the first under a decoder with a numpy `forward(ids)`
    (an ONNX graph), from the windows `ladder.train.lm.token_nats` reads."""
    out = np.zeros(max(len(tokens) - 1, 0), dtype=np.float64)
    for w in scoring_windows(tokens, block_size):
        logits, _ = decoder.forward(w.x[None, :])
        row = logits[0].astype(np.float64)
        top = row.max(axis=1, keepdims=True)
        log_z = top[:, 0] + np.log(np.exp(row - top).sum(axis=1))
        nats = log_z - row[np.arange(len(w.y)), w.y]
        out[w.scored] = nats[w.keep :]
    return out


def fit_language_model(
    config: Config,
    entry: ModelEntry,
    vocab_size: int,
    train: TokenFile,
    val: TokenFile | None,
    model_dir: Path,
    device: str,
    resume: bool = False,
) -> tuple[FittedNgram | FittedNetwork, list[dict[str, Any]]]:
    """The fitted model of `entry` and its training history (empty for the n-gram model)."""
    spec = get_spec(entry.type)
    model = spec.builder("generation")(entry.params, (), vocab_size)
    if isinstance(model, KneserNey):
        model.fit(train.tokens(), vocab_size)
        return FittedNgram(model, block_size=1 << 30), []
    block_size = int(getattr(model, "block_size", None) or model.config.block_size)
    history = _train_network(
        config, entry, model, train, val, block_size, model_dir, device, resume
    )
    return FittedNetwork(model.eval(), block_size, device), history


def _train_network(
    config: Config,
    entry: ModelEntry,
    module: Any,
    train: TokenFile,
    val: TokenFile | None,
    block_size: int,
    model_dir: Path,
    device: str,
    resume: bool,
) -> list[dict[str, Any]]:
    """Train a network with the Trainer's step mode over random windows of the token files;
    returns the history (one row per evaluation interval)."""
    identity = {
        "model_type": entry.type,
        "model_config": entry.params.model_dump(mode="json"),
        "vocab_size": train.vocab_size,
    }
    windows = TokenWindows(train.tokens(), block_size, mask=train.loss_mask(), split="training")
    val_windows = (
        TokenWindows(val.tokens(), block_size, mask=val.loss_mask(), split="validation")
        if val is not None
        else None
    )
    return train_by_steps(
        config, entry, module, windows, val_windows, identity, model_dir, device, resume
    )


def train_by_steps(
    config: Config,
    entry: ModelEntry,
    module: Any,
    train: Any,
    val: Any | None,
    identity: dict[str, Any],
    model_dir: Path,
    device: str,
    resume: bool,
) -> list[dict[str, Any]]:
    """Train `module` with the Trainer's step mode (next-token cross-entropy) over batches of
    `train` (TokenWindows, or a seq2seq model's PairBatches), validating on `val`, with the
    history, checkpoints (tagged with `identity`) and progress of `model_dir`; returns the
    history, one row per evaluation interval."""
    cfg = entry.train
    stopping = cfg.early_stopping
    if stopping is not None and val is None and stopping.monitor.startswith("val_"):
        raise ConfigError(
            [
                f"models.{entry.name}.early_stopping: monitors {stopping.monitor} but there is no "
                "validation part; set data.split.val > 0 or early_stopping: null"
            ]
        )
    checkpoints = model_dir / "checkpoints"
    callbacks = [
        History(model_dir / "history.csv"),
        Checkpoint(checkpoints, every_steps=cfg.checkpoint_every_steps, identity=identity),
        ProgressBar(label=entry.name),
    ]
    setup = TrainerSetup(objective=LanguageModeling(), seed=config.seed)
    trainer = setup.trainer(module, cfg, device, callbacks)
    return trainer.fit_steps(train, val, resume_from=checkpoints if resume else None)

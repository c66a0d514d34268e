"""The registry entries of the language models (the rungs of `data.task: generation`): the
n-gram model, the recurrent LM, the GPT from scratch and a pretrained causal LM. Each builds
from its config and the tokenizer's vocabulary size: `build(config, (), vocab_size)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.models.causal_lm import CausalLMConfig, load_causal_lm, load_saved
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.models.ngram import KneserNey, NgramConfig
from ladder.models.rnn_lm import RNNLMConfig, build_rnn_lm
from ladder.models.spec import ModelSpec


def _build_ngram(config: Any, _: tuple[int, ...], vocab_size: int) -> Any:
    return KneserNey(config)


def _build_rnn_lm(config: Any, _: tuple[int, ...], vocab_size: int) -> Any:
    return build_rnn_lm(config, vocab_size)


def _build_gpt(config: Any, _: tuple[int, ...], vocab_size: int) -> Any:
    return build_gpt(config, vocab_size)


def _build_causal_lm(config: Any, _: tuple[int, ...], vocab_size: int) -> Any:
    return load_causal_lm(config)


def _load_causal_lm(config: Any, folder: Path, _: int) -> Any:
    return load_saved(folder)


# a pretrained decoder fine-tunes gently; LoRA adapters take a larger rate (set train.optimizer)
CAUSAL_LM_TRAINING = {
    "optimizer": {"name": "adamw", "lr": 5.0e-5, "weight_decay": 0.0},
    "scheduler": {"name": "cosine", "warmup_fraction": 0.05},
    "grad_clip": 1.0,
    "max_steps": 200,
    "eval_interval": 50,
}
FROM_SCRATCH_TRAINING = {
    "optimizer": {"name": "adamw", "lr": 1.0e-3, "weight_decay": 0.1},
    "scheduler": {"name": "cosine", "warmup_fraction": 0.05, "min_lr": 1.0e-4},
    "grad_clip": 1.0,
}


def specs() -> list[ModelSpec]:
    """The language models' registry entries."""
    text, generation = ("text",), ("generation",)
    return [
        ModelSpec(
            type="ngram",
            family="classical",
            config_cls=NgramConfig,
            build=_build_ngram,
            summary="interpolated Kneser-Ney n-gram language model (counts, no training loop)",
            inputs=text,
            tasks=generation,
        ),
        ModelSpec(
            type="rnn_lm",
            family="neural",
            config_cls=RNNLMConfig,
            build=_build_rnn_lm,
            summary="LSTM/GRU language model (char-rnn style)",
            inputs=text,
            tasks=generation,
            train_defaults=FROM_SCRATCH_TRAINING,
        ),
        ModelSpec(
            type="gpt",
            family="neural",
            config_cls=GPTConfig,
            build=_build_gpt,
            summary="decoder-only Transformer from scratch (nanoGPT style, KV cache, ONNX)",
            inputs=text,
            tasks=generation,
            train_defaults=FROM_SCRATCH_TRAINING,
        ),
        ModelSpec(
            type="causal_lm",
            family="neural",
            config_cls=CausalLMConfig,
            build=_build_causal_lm,
            summary="fine-tunes a local Hugging Face causal LM (GPT-2, Llama, ...), fully or LoRA",
            inputs=text,
            tasks=generation,
            train_defaults=CAUSAL_LM_TRAINING,
            own_tokenizer=True,
            load_module=_load_causal_lm,
        ),
    ]

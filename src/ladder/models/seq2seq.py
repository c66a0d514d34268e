"""The registry entries of the sequence-to-sequence models (the rungs of `data.task: seq2seq`):
the translation memory, the recurrent encoder-decoder with attention, the encoder-decoder
Transformer from scratch and a pretrained encoder-decoder. A network builds from its config,
the source vocabulary size and the target vocabulary size:
`build(config, (source_vocab_size,), target_vocab_size)`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ladder.models.language import CAUSAL_LM_TRAINING, FROM_SCRATCH_TRAINING
from ladder.models.memory import MemoryConfig, TranslationMemory
from ladder.models.pretrained_seq2seq import (
    PretrainedSeq2SeqConfig,
    load_pretrained_seq2seq,
    load_saved,
)
from ladder.models.seq2seq_rnn import Seq2SeqRNNConfig, build_seq2seq_rnn
from ladder.models.seq2seq_transformer import Seq2SeqTransformerConfig, build_seq2seq_transformer
from ladder.models.spec import ModelSpec


def _build_memory(config: Any, _: tuple[int, ...], __: int) -> Any:
    return TranslationMemory(config)


def _build_rnn(config: Any, source: tuple[int, ...], target_vocab_size: int) -> Any:
    return build_seq2seq_rnn(config, source[0], target_vocab_size)


def _build_transformer(config: Any, source: tuple[int, ...], target_vocab_size: int) -> Any:
    return build_seq2seq_transformer(config, source[0], target_vocab_size)


def _build_pretrained(config: Any, _: tuple[int, ...], __: int) -> Any:
    return load_pretrained_seq2seq(config)


def _load_pretrained(config: Any, folder: Path, _: int) -> Any:
    return load_saved(folder, config.max_source_length, config.max_target_length)


# pairs are short: validate often, and stop early only on a long plateau
SEQ2SEQ_TRAINING = {**FROM_SCRATCH_TRAINING, "max_steps": 1000, "eval_interval": 100}


def specs() -> list[ModelSpec]:
    """The sequence-to-sequence models' registry entries."""
    text, seq2seq = ("text",), ("seq2seq",)
    return [
        ModelSpec(
            type="memory",
            family="classical",
            config_cls=MemoryConfig,
            build=_build_memory,
            summary="translation memory: the target of the most similar training source "
            "(TF-IDF cosine)",
            inputs=text,
            tasks=seq2seq,
        ),
        ModelSpec(
            type="seq2seq_rnn",
            family="neural",
            config_cls=Seq2SeqRNNConfig,
            build=_build_rnn,
            summary="GRU/LSTM encoder-decoder with Bahdanau or Luong attention",
            inputs=text,
            tasks=seq2seq,
            train_defaults=SEQ2SEQ_TRAINING,
        ),
        ModelSpec(
            type="seq2seq_transformer",
            family="neural",
            config_cls=Seq2SeqTransformerConfig,
            build=_build_transformer,
            summary="encoder-decoder Transformer from scratch (KV cache, ONNX)",
            inputs=text,
            tasks=seq2seq,
            train_defaults=SEQ2SEQ_TRAINING,
        ),
        ModelSpec(
            type="pretrained_seq2seq",
            family="neural",
            config_cls=PretrainedSeq2SeqConfig,
            build=_build_pretrained,
            summary="fine-tunes a local Hugging Face encoder-decoder (T5, BART, Marian), fully "
            "or LoRA",
            inputs=text,
            tasks=seq2seq,
            train_defaults=CAUSAL_LM_TRAINING,
            own_tokenizer=True,
            load_module=_load_pretrained,
        ),
    ]

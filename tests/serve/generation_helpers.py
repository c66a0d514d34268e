"""Tiny language models for the generation serving tests: a random GPT over the characters of
a short text (no training: the tests check the serving, not the text), and a decoder whose
steps the test can hold."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from ladder.data.lm_tokenizers import CharTokenizer
from ladder.generate.decoders import TorchDecoder
from ladder.generate.generator import TextGenerator
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.serve.generation import GenerationSettings, ServedGenerator

TEXT = "the quick brown fox jumps over the lazy dog"
CONTEXT = 32


def tiny_generator(seed: int = 0) -> TextGenerator:
    """A random 2-layer GPT (context 32) over TEXT's characters."""
    import torch

    torch.manual_seed(seed)
    tokenizer = CharTokenizer.train([TEXT])
    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=CONTEXT)
    model = build_gpt(config, tokenizer.vocab_size)
    return TextGenerator(TorchDecoder(model), tokenizer, {"model_type": "gpt"})


class HeldDecoder:
    """A decoder whose decode steps wait while `hold` is set (prefill never waits): the test
    decides when the running batch moves on."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.vocab_size, self.context_length = inner.vocab_size, inner.context_length
        self.moving = threading.Event()
        self.moving.set()

    def hold(self) -> None:
        """Stop decode steps until `release`."""
        self.moving.clear()

    def release(self) -> None:
        """Let decode steps run."""
        self.moving.set()

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        return self.inner.prefill(ids)

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        self.moving.wait(30)
        return self.inner.decode(tokens, states)


def served(name: str = "tiny", held: bool = False, max_queue: int = 100, **settings: Any):
    """A ServedGenerator of `tiny_generator` (its decoder a HeldDecoder when `held`)."""
    generator = tiny_generator()
    if held:
        generator.decoder = HeldDecoder(generator.decoder)
    return ServedGenerator(name, generator, GenerationSettings(**settings), max_queue)

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
    """A decoder whose decode steps wait while held, each `step()` letting one through
    (prefill never waits): the test decides when the running batch moves on. Between two
    steps the engine admits queued requests."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.vocab_size, self.context_length = inner.vocab_size, inner.context_length
        self._turn = threading.Condition()
        self._held, self._permits = False, 0

    def hold(self) -> None:
        """Stop decode steps until `step` or `release`."""
        with self._turn:
            self._held, self._permits = True, 0

    def step(self) -> None:
        """Let one decode step through."""
        with self._turn:
            self._permits += 1
            self._turn.notify_all()

    def release(self) -> None:
        """Let every decode step run."""
        with self._turn:
            self._held = False
            self._turn.notify_all()

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        return self.inner.prefill(ids)

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        with self._turn:
            self._turn.wait_for(lambda: not self._held or self._permits > 0, timeout=30)
            if self._held and self._permits:
                self._permits -= 1
        return self.inner.decode(tokens, states)


def served(name: str = "tiny", held: bool = False, max_queue: int = 100, **settings: Any):
    """A ServedGenerator of `tiny_generator` (its decoder a HeldDecoder when `held`)."""
    generator = tiny_generator()
    if held:
        generator.decoder = HeldDecoder(generator.decoder)
    return ServedGenerator(name, generator, GenerationSettings(**settings), max_queue)

"""The contract between a language model and everything that decodes with it (the CLI, the
Python API, the server's continuous batching, the ONNX Runtime loop).

A `Decoder` wraps one loaded model. `prefill` reads a prompt and returns the next-token logits
with the sequence's state (its KV cache, a recurrent state, or the n-gram's context);
`decode` advances several sequences by one token each in one call, so a batch of sequences of
different lengths moves together. Logits are float32 numpy arrays, so decoding never needs
torch (the ONNX Runtime decoder runs without it).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np


class Decoder(Protocol):
    """One loaded language model, seen as prefill + batched one-token decode steps."""

    vocab_size: int
    context_length: int  # the most tokens the model reads at once (its block_size)

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        """Logits (vocab,) of the token after `ids` (1 <= len(ids) <= context_length) and the
        state that `decode` continues from."""
        ...

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """Feed token `tokens[i]` to sequence `states[i]`, for every i at once: logits
        (len(tokens), vocab) and the new states. A state whose sequence has reached
        `context_length` tokens is never decoded: the caller prefills its last tokens again."""
        ...

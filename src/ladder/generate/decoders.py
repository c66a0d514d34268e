"""`Decoder`s (ladder.generate.decoder) for ladder's own language models: any torch module
with `forward(idx, past) -> (logits, present)` (GPT, RNNLM, CausalLM), and the n-gram model."""

from __future__ import annotations

from typing import Any

import numpy as np

from ladder.models.ngram import KneserNey


class TorchDecoder:
    """A torch language model in eval mode, without gradients; each sequence keeps its own
    cache (a KV cache, or a recurrent state)."""

    def __init__(self, model: Any, device: str = "cpu") -> None:
        import torch

        self.torch, self.model, self.device = torch, model.eval().to(device), device
        head = getattr(model, "vocab_size", None)
        self.vocab_size = int(head if head is not None else model.config.vocab_size)
        size = getattr(model, "block_size", None)
        self.context_length = int(size if size is not None else model.config.block_size)

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        """Logits after `ids` and the model's cache."""
        return self._step(ids, None)

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """One token for each sequence, each with its own cache."""
        rows, new = [], []
        for token, state in zip(tokens, states, strict=True):
            logits, present = self._step([token], state)
            rows.append(logits)
            new.append(present)
        return np.stack(rows), new

    def _step(self, ids: list[int], past: Any) -> tuple[np.ndarray, Any]:
        with self.torch.inference_mode():
            idx = self.torch.tensor([ids], dtype=self.torch.long, device=self.device)
            logits, present = self.model(idx, past)
            return logits[0, -1].float().cpu().numpy(), present


class NgramDecoder:
    """An n-gram model: the state is the last order - 1 tokens."""

    def __init__(self, model: KneserNey, context_length: int = 1 << 30) -> None:
        self.model = model
        self.vocab_size = model.vocab_size_
        self.context_length = context_length  # it reads only its last order - 1 tokens

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, list[int]]:
        """Log-probabilities after `ids`, and its last order - 1 tokens."""
        keep = list(ids[len(ids) - (self.model.order - 1) :]) if self.model.order > 1 else []
        return self._logits(ids), keep

    def decode(self, tokens: list[int], states: list[list[int]]) -> tuple[np.ndarray, list[Any]]:
        """One token for each sequence."""
        out, new = [], []
        for token, state in zip(tokens, states, strict=True):
            logits, keep = self.prefill([*state, token])
            out.append(logits)
            new.append(keep)
        return np.stack(out), new

    def _logits(self, ids: list[int]) -> np.ndarray:
        probs = self.model.next_distribution(ids[-self.model.order :] if ids else [])
        return np.log(np.maximum(probs, 1e-300)).astype(np.float32)

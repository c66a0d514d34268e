"""`Decoder`s (ladder.generate.decoder) for ladder's own language models: any torch module
with `forward(idx, past) -> (logits, present)` (GPT, RNNLM, CausalLM), and the n-gram model."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ladder.models.ngram import KneserNey

ROOM = 64  # positions a batch cache holds beyond its longest sequence before it is copied


class TorchDecoder:
    """A torch language model in eval mode, without gradients; each sequence keeps its own
    cache (a KV cache, or a recurrent state).

    A model whose forward takes `positions` and `key_mask` (ladder's GPT) decodes all the
    sequences of a step in one forward: their KV caches are padded on the left to the longest
    and the padding masked out. Padding copies every cache, so it is done only when the batch
    changes or its cache is full: the batch cache has room for ROOM more tokens, written in
    place, so a step given exactly the states the last one returned copies nothing. Other
    models decode one sequence after another."""

    def __init__(self, model: Any, device: str = "cpu") -> None:
        import torch

        self.torch, self.model, self.device = torch, model.eval().to(device), device
        head = getattr(model, "vocab_size", None)
        self.vocab_size = int(head if head is not None else model.config.vocab_size)
        size = getattr(model, "block_size", None)
        self.context_length = int(size if size is not None else model.config.block_size)
        accepts = inspect.signature(model.forward).parameters
        self.batched = {"positions", "key_mask", "past_length"} <= set(accepts)
        # the states the last batched decode returned, and its padded cache: a batch that
        # goes on unchanged (the usual step) reuses that cache instead of padding it again
        self._last: tuple[list[Any], Any] = ([], None)

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Any]:
        """Logits after `ids` and the model's cache."""
        return self._step(ids, None)

    def decode(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """One token for each sequence, each with its own cache."""
        if self.batched and len(states) > 1:
            return self._decode_batch(tokens, states)
        rows, new = [], []
        for token, state in zip(tokens, states, strict=True):
            logits, present = self._step([token], state)
            rows.append(logits)
            new.append(present)
        return np.stack(rows), new

    def _decode_batch(self, tokens: list[int], states: list[Any]) -> tuple[np.ndarray, list[Any]]:
        """One forward for every sequence: caches left-padded to the longest, padding masked."""
        torch = self.torch
        lengths = [int(state[0][0].shape[2]) for state in states]  # tokens each cache holds
        longest = max(lengths)
        pads = [longest - n for n in lengths]
        last, cache = self._last
        same = len(last) == len(states) and all(a is b for a, b in zip(last, states, strict=True))
        with torch.inference_mode():
            if not same or cache[0][0].shape[2] <= longest:  # another batch, or no room left
                cache = self._padded(states, pads, longest)
            options: dict[str, Any] = {"past_length": longest}
            if any(pads):  # equal lengths need neither: positions continue from the cache
                dev = self.device
                start = torch.tensor(pads, device=dev)[:, None]  # (batch, 1): first real key
                options["key_mask"] = torch.arange(longest + 1, device=dev)[None, :] >= start
                options["positions"] = torch.tensor(lengths, device=dev)[:, None]  # (batch, 1)
            idx = torch.tensor(tokens, dtype=torch.long, device=self.device)[:, None]  # (b, 1)
            logits, present = self.model(idx, cache, **options)
            rows = logits[:, -1].float().cpu().numpy()  # (batch, vocab)
        # each sequence's cache without its padding: views of the batch's cache, whose later
        # steps write only after them
        end = longest + 1
        new = [
            tuple((k[i : i + 1, :, pad:end], v[i : i + 1, :, pad:end]) for k, v in present)
            for i, pad in enumerate(pads)
        ]
        self._last = (new, present)
        return rows, new

    def _padded(self, states: list[Any], pads: list[int], longest: int) -> Any:
        """A batch cache with room: per layer (keys, values) (batch, heads, capacity, head_dim),
        row i holding states[i]'s cache after pads[i] empty positions."""
        capacity = min(self.context_length, longest + ROOM)
        cache = []
        for layer in range(len(states[0])):
            pair = []
            for which in (0, 1):  # keys, values
                first = states[0][layer][which]  # (1, heads, length, head_dim)
                shape = (len(states), first.shape[1], capacity, first.shape[3])
                buffer = self.torch.zeros(shape, dtype=first.dtype, device=first.device)
                for i, (state, pad) in enumerate(zip(states, pads, strict=True)):
                    buffer[i, :, pad:longest] = state[layer][which][0]
                pair.append(buffer)
            cache.append(tuple(pair))
        return tuple(cache)

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

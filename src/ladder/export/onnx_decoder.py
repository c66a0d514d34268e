"""A GPT's ONNX graph (`ladder.export.gpt_onnx`) decoding on ONNX Runtime with numpy alone:
importing this module loads neither torch nor ladder's models.

The graph maps `input_ids` (batch, new) int64 and each layer's cache, `past_key_<i>` and
`past_value_<i>` (batch, heads, past, head_dim) float32, to `logits` (batch, new, vocab) and
the cache of every position so far, `present_key_<i>` and `present_value_<i>`
(batch, heads, past + new, head_dim). An empty cache (past = 0) reads a prompt; one new token
with the cache of the earlier ones is a decode step. Positions continue from the cache's
length, so learned and rotary positions both work.

`OnnxDecoder` is a `ladder.generate.decoder.Decoder`: its state is one sequence's cache, the
tuple of present arrays in graph order (key_0, value_0, key_1, value_1, ...), each
(1, heads, length, head_dim). `decode` moves sequences of equal length together in one call.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from ladder.export.onnx import cpu_session

INPUT_IDS, LOGITS = "input_ids", "logits"
METADATA_KEY = "ladder_gpt"  # the graph's metadata, JSON: {"block_size": ..., "vocab_size": ...}

Cache = tuple[np.ndarray, ...]  # key_0, value_0, key_1, value_1, ...: (batch, heads, len, hd)


def past_names(n_layer: int) -> list[str]:
    """The graph's cache inputs in order: past_key_0, past_value_0, past_key_1, ..."""
    return [f"past_{part}_{i}" for i in range(n_layer) for part in ("key", "value")]


def present_names(n_layer: int) -> list[str]:
    """The graph's cache outputs in order: present_key_0, present_value_0, ..."""
    return [f"present_{part}_{i}" for i in range(n_layer) for part in ("key", "value")]


class OnnxDecoder:
    """Prefill and batched one-token decode steps of a GPT's ONNX graph on ONNX Runtime.

    Args:
        graph: the graph's bytes or the path of its .onnx file.
        vocab_size: the number of token ids (the width of the logits).
        context_length: the most tokens the model reads at once (its block_size).
        threads: ONNX Runtime's intra-op threads (None: its defaults).
    """

    def __init__(
        self,
        graph: bytes | str | Path,
        vocab_size: int,
        context_length: int,
        threads: int | None = 1,
    ) -> None:
        self.session = cpu_session(graph, threads)
        inputs = {i.name: i for i in self.session.get_inputs()}
        self.n_layer = sum(name.startswith("past_") for name in inputs) // 2
        if self.n_layer == 0 or set(inputs) != {INPUT_IDS, *past_names(self.n_layer)}:
            raise ValueError(
                f"not a GPT graph with a KV cache: its inputs are {sorted(inputs)}; expected "
                "input_ids and past_key_<i>, past_value_<i> per layer (ladder.export.gpt_onnx)"
            )
        _, self.n_head, _, self.head_dim = inputs["past_key_0"].shape
        width = self.session.get_outputs()[0].shape[-1]
        if isinstance(width, int) and width != vocab_size:
            raise ValueError(f"vocab_size={vocab_size}, but the graph's logits have {width}")
        meta = json.loads(self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY, "{}"))
        block_size = meta.get("block_size")
        if not 1 <= context_length <= (block_size or context_length):
            raise ValueError(
                f"context_length must be in [1, {block_size or 'inf'}] (the graph's block_size); "
                f"got {context_length}"
            )
        self.vocab_size, self.context_length = vocab_size, context_length
        self._past = past_names(self.n_layer)

    def forward(self, ids: np.ndarray, past: Cache | None = None) -> tuple[np.ndarray, Cache]:
        """One run of the graph, the numpy twin of `GPT.forward`: ids (batch, new) and the
        cache of the earlier positions (None: none) -> (logits (batch, new, vocab), the cache
        of every position so far)."""
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.ndim != 2:
            raise ValueError(f"ids must be (batch, new) token ids; got shape {ids.shape}")
        if past is None:
            empty = np.zeros((len(ids), self.n_head, 0, self.head_dim), dtype=np.float32)
            past = (empty,) * len(self._past)
        if len(past) != len(self._past):
            raise ValueError(f"past has {len(past)} arrays; this graph takes {len(self._past)}")
        length = past[0].shape[2] + ids.shape[1]
        if length > self.context_length:
            raise ValueError(
                f"{past[0].shape[2]} cached + {ids.shape[1]} new tokens exceed the context "
                f"length {self.context_length}; keep only the last tokens (and drop the cache)"
            )
        feed = {INPUT_IDS: ids, **dict(zip(self._past, past, strict=True))}
        logits, *present = self.session.run(None, feed)
        return logits, tuple(present)

    def prefill(self, ids: list[int]) -> tuple[np.ndarray, Cache]:
        """Logits (vocab,) of the token after `ids` and their cache."""
        if not 1 <= len(ids) <= self.context_length:
            raise ValueError(
                f"prefill takes 1 to {self.context_length} tokens (the context length); "
                f"got {len(ids)}"
            )
        logits, present = self.forward(np.asarray([ids], dtype=np.int64))
        return logits[0, -1], present

    def decode(self, tokens: list[int], states: list[Cache]) -> tuple[np.ndarray, list[Cache]]:
        """Feed `tokens[i]` to the sequence whose cache is `states[i]`: logits
        (len(tokens), vocab) and the new caches. Sequences of equal length share one run."""
        if len(tokens) != len(states):
            raise ValueError(f"{len(tokens)} tokens for {len(states)} states")
        groups: dict[int, list[int]] = defaultdict(list)  # cache length -> rows
        for row, state in enumerate(states):
            groups[state[0].shape[2]].append(row)
        logits = np.empty((len(tokens), self.vocab_size), dtype=np.float32)
        new: list[Any] = [None] * len(states)
        for rows in groups.values():
            ids = np.asarray([[tokens[r]] for r in rows], dtype=np.int64)  # (group, 1)
            if len(rows) == 1:
                past = states[rows[0]]
            else:  # the group's caches stacked on the batch axis
                caches = [states[r] for r in rows]
                past = tuple(np.concatenate(parts) for parts in zip(*caches, strict=True))
            step, present = self.forward(ids, past)
            logits[rows] = step[:, -1]
            for i, r in enumerate(rows):
                new[r] = tuple(array[i : i + 1] for array in present)  # (1, heads, len, hd)
        return logits, new


__all__ = [
    "INPUT_IDS",
    "LOGITS",
    "METADATA_KEY",
    "Cache",
    "OnnxDecoder",
    "past_names",
    "present_names",
]

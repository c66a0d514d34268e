"""Scoring a language model on a token stream: the summed negative log-likelihood of every
token after the first, from non-overlapping windows of the model's context length. Works for
any module whose `forward(idx)` returns `(logits, cache)` (ladder's GPT, a Hugging Face
causal LM wrapped by `ladder.models.causal_lm`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253

from ladder.data.token_windows import sequential_windows


@torch.no_grad()
def stream_nll(
    model: Any, tokens: np.ndarray, block_size: int, batch_size: int = 16, device: str = "cpu"
) -> tuple[float, int]:
    """(total nats, tokens predicted) of `tokens` under `model` (eval mode; its train mode is
    restored). Each window starts without context, as a fixed-context model sees it."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    windows = sequential_windows(tokens, block_size)
    try:
        for begin in range(0, len(windows), batch_size):
            group = windows[begin : begin + batch_size]
            for length in sorted({len(x) for x, _ in group}):  # the last window may be shorter
                same = [(x, y) for x, y in group if len(x) == length]
                x = torch.as_tensor(np.stack([w[0] for w in same]), device=device)
                y = torch.as_tensor(np.stack([w[1] for w in same]), device=device)
                logits, _ = model(x)
                loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum")
                total += float(loss)
                count += y.numel()
    finally:
        model.train(was_training)
    return total, count

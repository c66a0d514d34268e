"""Scoring a language model on a token stream: the negative log-likelihood of every token
after the first, from non-overlapping windows of the model's context length. Works for any
module whose `forward(idx)` returns `(logits, cache)` (ladder's GPT and RNN LM, a Hugging Face
causal LM wrapped by `ladder.models.causal_lm`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253

from ladder.data.token_windows import sequential_windows


@torch.no_grad()
def token_nats(
    model: Any, tokens: np.ndarray, block_size: int, batch_size: int = 16, device: str = "cpu"
) -> np.ndarray:
    """The nats of each token after the first, (len(tokens) - 1,) float64, under `model` (eval
    mode; its train mode is restored). Each window starts without context, as a fixed-context
    model sees it."""
    was_training = model.training
    model.eval()
    out = np.zeros(max(len(tokens) - 1, 0), dtype=np.float64)
    windows = sequential_windows(tokens, block_size)
    try:
        for begin in range(0, len(windows), batch_size):
            group = list(enumerate(windows[begin : begin + batch_size], start=begin))
            for length in sorted({len(x) for _, (x, _) in group}):  # the last may be shorter
                same = [(i, x, y) for i, (x, y) in group if len(x) == length]
                x = torch.as_tensor(np.stack([w[1] for w in same]), device=device)
                y = torch.as_tensor(np.stack([w[2] for w in same]), device=device)
                logits, _ = model(x)
                nats = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")
                for (i, _, _), row in zip(same, nats.cpu().numpy(), strict=True):
                    out[i * block_size : i * block_size + length] = row
    finally:
        model.train(was_training)
    return out


def stream_nll(
    model: Any, tokens: np.ndarray, block_size: int, batch_size: int = 16, device: str = "cpu"
) -> tuple[float, int]:
    """(total nats, tokens predicted) of `tokens` under `model` (see `token_nats`)."""
    nats = token_nats(model, tokens, block_size, batch_size, device)
    return float(nats.sum()), int(nats.size)

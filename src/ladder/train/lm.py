"""Scoring a language model on a token stream: the negative log-likelihood of every token
after the first, from windows of the model's context length sliding by half of it. Works for any
module whose `forward(idx)` returns `(logits, cache)` (ladder's GPT and RNN LM, a Hugging Face
causal LM wrapped by `ladder.models.causal_lm`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch  # noqa: TID253
import torch.nn.functional as F  # noqa: TID253

from ladder.data.token_windows import scoring_windows


@torch.no_grad()
def token_nats(
    model: Any, tokens: np.ndarray, block_size: int, batch_size: int = 16, device: str = "cpu"
) -> np.ndarray:
    """The nats of each token after the first, (len(tokens) - 1,) float64, under `model` (eval
    mode; its train mode is restored), from `scoring_windows`: the first window starts without
    context, later tokens have at least half a block of it."""
    was_training = model.training
    model.eval()
    out = np.zeros(max(len(tokens) - 1, 0), dtype=np.float64)
    windows = scoring_windows(tokens, block_size)
    try:
        for begin in range(0, len(windows), batch_size):
            group = windows[begin : begin + batch_size]
            for length in sorted({len(w.x) for w in group}):  # the last may be shorter
                same = [w for w in group if len(w.x) == length]
                x = torch.as_tensor(np.stack([w.x for w in same]), device=device)
                y = torch.as_tensor(np.stack([w.y for w in same]), device=device)
                logits, _ = model(x)
                nats = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none")
                for w, row in zip(same, nats.cpu().numpy(), strict=True):
                    out[w.scored] = row[w.keep :]
    finally:
        model.train(was_training)
    return out


def stream_nll(
    model: Any, tokens: np.ndarray, block_size: int, batch_size: int = 16, device: str = "cpu"
) -> tuple[float, int]:
    """(total nats, tokens predicted) of `tokens` under `model` (see `token_nats`)."""
    nats = token_nats(model, tokens, block_size, batch_size, device)
    return float(nats.sum()), int(nats.size)

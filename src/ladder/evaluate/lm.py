"""Language-model metrics of a test stream, from its summed negative log-likelihood: loss per
token, perplexity, and bits per byte, which does not depend on the tokenizer, so models that
cut the same text differently rank honestly on one leaderboard."""

from __future__ import annotations

import math
from typing import Any


def lm_metrics(total_nats: float, n_tokens: int, n_bytes: int) -> dict[str, Any]:
    """`loss` (nats per predicted token), `perplexity` (exp of it) and `bits_per_byte` (the
    total in bits over the UTF-8 bytes of the predicted text)."""
    if n_tokens <= 0 or n_bytes <= 0:
        raise ValueError(f"need predicted tokens and bytes, got {n_tokens} and {n_bytes}")
    if not math.isfinite(total_nats) or total_nats < 0:
        raise ValueError(f"total_nats must be finite and >= 0, got {total_nats}")
    loss = total_nats / n_tokens
    return {
        "loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),  # exp overflows past ~709
        "bits_per_byte": total_nats / (math.log(2) * n_bytes),
        "tokens": n_tokens,
        "bytes": n_bytes,
    }

"""Language-model metrics of a test stream, from its summed negative log-likelihood: loss per
token, perplexity, and bits per byte, which does not depend on the tokenizer, so models that
cut the same text differently rank honestly on one leaderboard."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ladder.evaluate.compare import paired_t_p


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


def bits_per_byte_ci(
    nats: Any, n_bytes: Any, n_resamples: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of bits per byte, resampling test segments (their summed
    nats and their bytes) with replacement; (nan, nan) with no resamples or no segments."""
    nats = np.asarray(nats, dtype=np.float64)
    n_bytes = np.asarray(n_bytes, dtype=np.float64)
    if nats.shape != n_bytes.shape or nats.ndim != 1:
        raise ValueError(
            f"nats and n_bytes must be 1-D of one length, got {nats.shape}, {n_bytes.shape}"
        )
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if n_resamples <= 0 or nats.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, nats.size, size=(n_resamples, nats.size))
    ratios = nats[rows].sum(axis=1) / (math.log(2) * np.maximum(n_bytes[rows].sum(axis=1), 1))
    tail = (1 - level) / 2
    return float(np.quantile(ratios, tail)), float(np.quantile(ratios, 1 - tail))


def paired_bits_p(n_bytes: Any, nats_a: Any, nats_b: Any) -> float:
    """Two-sided p-value: do language models a and b differ in bits per byte? A paired t-test
    on the per-segment differences of bits per byte (the segments are the same text for both
    models, whatever their tokenizers). Identical scores give 1.0; fewer than 2 segments nan."""
    n_bytes = np.maximum(np.asarray(n_bytes, dtype=np.float64), 1)
    return paired_t_p((np.asarray(nats_a, np.float64) - np.asarray(nats_b, np.float64)) / n_bytes)

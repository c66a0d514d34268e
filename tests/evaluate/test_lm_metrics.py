"""Language-model metrics: loss, perplexity and bits per byte."""

from __future__ import annotations

import math

import pytest

from ladder.evaluate.lm import lm_metrics


def test_a_uniform_model_over_256_bytes_spends_8_bits_per_byte():
    n = 1000
    metrics = lm_metrics(total_nats=n * math.log(256), n_tokens=n, n_bytes=n)
    assert metrics["bits_per_byte"] == pytest.approx(8.0)
    assert metrics["perplexity"] == pytest.approx(256.0)
    assert metrics["loss"] == pytest.approx(math.log(256))


def test_bits_per_byte_does_not_depend_on_how_the_text_is_cut():
    # the same 400 bytes: 400 character tokens at 1 nat each, or 100 tokens at 4 nats each
    chars = lm_metrics(400 * 1.0, 400, 400)
    words = lm_metrics(100 * 4.0, 100, 400)
    assert chars["bits_per_byte"] == pytest.approx(words["bits_per_byte"])
    assert chars["loss"] != words["loss"]


def test_bad_counts_are_refused():
    with pytest.raises(ValueError, match="need predicted tokens and bytes"):
        lm_metrics(1.0, 0, 10)
    with pytest.raises(ValueError, match="finite"):
        lm_metrics(float("nan"), 1, 1)

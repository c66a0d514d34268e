"""Scoring language models on a token stream, and the rungs' bits per byte side by side."""

from __future__ import annotations

import math
import pydoc_data.topics

import numpy as np
import torch

from ladder.data.corpus import split_stream
from ladder.data.lm_tokenizers import train_tokenizer
from ladder.evaluate.lm import lm_metrics
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.models.ngram import KneserNey, NgramConfig
from ladder.train.lm import stream_nll, token_nats


class _Uniform(torch.nn.Module):
    def __init__(self, vocab: int) -> None:
        super().__init__()
        self.vocab = vocab

    def forward(self, idx, past=None):
        return torch.zeros(*idx.shape, self.vocab), None


def test_a_uniform_model_scores_log_vocab_per_token():
    tokens = np.arange(100) % 7
    total, count = stream_nll(_Uniform(7), tokens, block_size=16, batch_size=3)
    assert count == 99 and math.isclose(total, 99 * math.log(7), rel_tol=1e-6)


def test_each_token_is_scored_once_with_the_context_of_its_sliding_window():
    torch.manual_seed(0)
    block, stride = 8, 4
    model = build_gpt(GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=block), 11).eval()
    tokens = np.random.default_rng(0).integers(0, 11, 27)
    nats = token_nats(model, tokens, block, batch_size=2)
    for t in range(len(tokens) - 1):  # target t is token t + 1
        start = 0 if t < block else (t - (block - stride)) // stride * stride
        assert t - start >= (0 if t < block else stride)  # half a block of context at least
        x = torch.as_tensor(tokens[start : t + 1][None, :])
        with torch.no_grad():
            logits, _ = model(x)
        expected = -torch.log_softmax(logits[0, -1].double(), -1)[int(tokens[t + 1])]
        assert math.isclose(nats[t], float(expected), rel_tol=1e-5, abs_tol=1e-6)


def test_gpt_and_ngram_rank_on_bits_per_byte():
    text = "".join(pydoc_data.topics.topics[k] for k in sorted(pydoc_data.topics.topics)[:6])
    tokenizer = train_tokenizer("char", [text])
    ids = tokenizer.encode(text)
    split = split_stream(len(ids), val=0.0, test=0.1, block_size=32)
    train, test = ids[slice(*split.train)], ids[slice(*split.test)]
    test_bytes = len(tokenizer.decode(test[1:]).encode("utf-8"))

    scores = {}
    for order in (1, 3):
        model = KneserNey(NgramConfig(order=order)).fit(train, tokenizer.vocab_size)
        nats, n = model.log_likelihood(test)
        scores[f"ngram{order}"] = lm_metrics(-nats + _first(model, test), n - 1, test_bytes)

    torch.manual_seed(0)
    gpt = build_gpt(GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=32), tokenizer.vocab_size)
    optimizer = torch.optim.AdamW(gpt.param_groups(3e-3, 0.01))
    rng = np.random.default_rng(0)
    for _ in range(150):
        starts = rng.integers(0, len(train) - 33, size=16)
        window = torch.as_tensor(np.stack([train[s : s + 33] for s in starts]))
        logits, _ = gpt(window[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    nats, n = stream_nll(gpt, test, block_size=32)
    scores["gpt"] = lm_metrics(nats, n, test_bytes)

    bpb = {name: m["bits_per_byte"] for name, m in scores.items()}
    assert bpb["ngram3"] < bpb["ngram1"]  # context helps
    assert bpb["gpt"] < bpb["ngram1"]  # a briefly trained GPT beats the unigram
    assert all(0.5 < value < 8 for value in bpb.values()), bpb


def _first(model: KneserNey, test: np.ndarray) -> float:
    """The first token's log-probability (from the empty context), which the torch models do
    not predict: left out so that every model is scored on the same tokens."""
    return float(np.log(model.next_distribution([])[test[0]]))

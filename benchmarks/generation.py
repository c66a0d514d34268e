"""Claims of the generative rung that its pieces already support (the `generation` task is not
wired into `ladder run` yet):

1. KV cache: generating 256 new tokens with `ladder.models.gpt` and the cache is >= 5x faster
   than recomputing the full context at every step (greedy, same tokens both ways);
2. bits per byte on one corpus, side by side: Kneser-Ney n-grams of order 1-5, and an LSTM
   language model and a GPT each trained for the same fixed time by a plain AdamW loop over
   random windows (character tokens, the same
   contiguous 90/10 split, every model scored on the same test tokens).

Corpus: the English of the `pydoc_data` topics that ship with Python (about 0.5 MB).
Run: .venv/bin/python benchmarks/generation.py [--seconds 60] [--rounds 3]
"""

from __future__ import annotations

import argparse
import pydoc_data.topics
import statistics
import time

import numpy as np
import torch

from ladder.data.corpus import split_stream
from ladder.data.lm_tokenizers import train_tokenizer
from ladder.evaluate.lm import lm_metrics
from ladder.generate.sampling import generate_ids
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.models.ngram import KneserNey, NgramConfig
from ladder.models.rnn_lm import RNNLMConfig, build_rnn_lm
from ladder.train.lm import stream_nll

BLOCK = 64  # nanoGPT's CPU "baby" configuration: 4 layers, 4 heads, width 128, block 64
BABY = GPTConfig(n_layer=4, n_head=4, n_embd=128, block_size=BLOCK, dropout=0.0)


def corpus() -> str:
    """Every pydoc topic, in name order."""
    topics = pydoc_data.topics.topics
    return "\n\n".join(topics[name] for name in sorted(topics))


def kv_cache_speedup(rounds: int, new_tokens: int = 256) -> tuple[float, float]:
    """Median seconds for `new_tokens` greedy tokens without and with the cache (a GPT whose
    context holds the prompt and every new token)."""
    torch.manual_seed(0)
    model = build_gpt(BABY.model_copy(update={"block_size": 512}), vocab_size=100)
    prompt = list(range(1, 33))

    def timed(use_cache: bool) -> tuple[float, list[int]]:
        start = time.perf_counter()
        tokens = list(generate_ids(model, prompt, new_tokens, temperature=0, use_cache=use_cache))
        return time.perf_counter() - start, tokens

    timed(True), timed(False)  # warm-up
    without, with_cache = [], []
    for _ in range(rounds):
        seconds, full = timed(False)
        without.append(seconds)
        seconds, cached = timed(True)
        with_cache.append(seconds)
        assert full == cached, "the cache changed the greedy tokens"
    return statistics.median(without), statistics.median(with_cache)


def ladder_of_bits(seconds: float) -> list[tuple[str, float, str]]:
    """(model, bits per byte on the test split, how it was trained) for each rung."""
    text = corpus()
    tokenizer = train_tokenizer("char", [text])
    ids = tokenizer.encode(text)
    split = split_stream(len(ids), val=0.0, test=0.1, block_size=BLOCK)
    train, test = ids[slice(*split.train)], ids[slice(*split.test)]
    test_bytes = len(tokenizer.decode(test[1:]).encode("utf-8"))
    rows = []
    for order in range(1, 6):
        start = time.perf_counter()
        model = KneserNey(NgramConfig(order=order)).fit(train, tokenizer.vocab_size)
        fitted = time.perf_counter() - start
        log_p, _ = model.log_likelihood(test)
        first = float(np.log(model.next_distribution([])[test[0]]))  # not scored for the GPT
        bits = lm_metrics(-log_p + first, len(test) - 1, test_bytes)["bits_per_byte"]
        rows.append((f"ngram order {order}", bits, f"fit in {fitted:.2f} s"))
    for name, model in (
        (
            "rnn_lm (2-layer LSTM 256)",
            build_rnn_lm(RNNLMConfig(block_size=BLOCK), tokenizer.vocab_size),
        ),
        ("gpt (4x4x128, block 64)", build_gpt(BABY, tokenizer.vocab_size)),
    ):
        steps = train_for(model, train, seconds)
        nats, n = stream_nll(model, test, BLOCK)
        bits = lm_metrics(nats, n, test_bytes)["bits_per_byte"]
        rows.append((name, bits, f"{steps} steps of batch 12 in {seconds:.0f} s"))
    return rows


def train_for(model: torch.nn.Module, train: np.ndarray, seconds: float) -> int:
    """A plain AdamW loop (lr 1e-3, weight decay 0.1 on matrices, clipping at 1) over random
    windows of `train` for `seconds`; returns the steps taken."""
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(model.param_groups(1e-3, 0.1))
    rng = np.random.default_rng(0)
    steps, start = 0, time.perf_counter()
    model.train()
    while time.perf_counter() - start < seconds:
        starts = rng.integers(0, len(train) - BLOCK - 1, size=12)
        window = torch.as_tensor(np.stack([train[s : s + BLOCK + 1] for s in starts]))
        logits, _ = model(window[:, :-1])
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), window[:, 1:].flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        steps += 1
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="the GPT's training time")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the KV-cache timing")
    args = parser.parse_args()
    without, with_cache = kv_cache_speedup(max(1, args.rounds))
    print(
        f"256 new tokens: recomputing {without:.2f} s, KV cache {with_cache:.2f} s: "
        f"{without / with_cache:.1f}x faster (goal >= 5x)"
    )
    print(f"{'model':<26} {'bits/byte':>9}  training")
    for name, bits, how in ladder_of_bits(args.seconds):
        print(f"{name:<26} {bits:>9.3f}  {how}")


if __name__ == "__main__":
    main()

"""Decoding: greedy, temperature, top-k and top-p sampling, seeds, argument checks, and that
streaming with the KV cache picks the same tokens as recomputing the context."""

from __future__ import annotations

import itertools

import pytest
import torch

from ladder.generate.sampling import generate_ids, next_token
from ladder.models.gpt import GPTConfig, build_gpt

TINY = {"n_layer": 2, "n_head": 2, "n_embd": 32, "block_size": 32}
VOCAB = 50


def _model(positions: str = "learned"):
    torch.manual_seed(0)
    return build_gpt(GPTConfig(**TINY, positions=positions), VOCAB)


def _logits(seed: int, vocab: int = VOCAB) -> torch.Tensor:
    return torch.randn(vocab, generator=torch.Generator().manual_seed(seed)) * 3


def _draws(logits: torch.Tensor, n: int, seed: int = 0, **options) -> list[int]:
    generator = torch.Generator().manual_seed(seed)
    options = {"temperature": 1.0, "top_k": None, "top_p": None, **options}
    return [next_token(logits, generator=generator, **options) for _ in range(n)]


def test_greedy_is_argmax():
    for seed in range(5):
        logits = _logits(seed)
        assert _draws(logits, 3, temperature=0) == [int(logits.argmax())] * 3
        # top_k and top_p change nothing at temperature 0
        assert _draws(logits, 1, temperature=0, top_k=5, top_p=0.5) == [int(logits.argmax())]


def test_top_k_1_and_a_tiny_top_p_are_greedy():
    for seed in range(5):
        logits = _logits(seed)
        best = int(logits.argmax())
        assert _draws(logits, 20, temperature=1.5, top_k=1) == [best] * 20
        assert _draws(logits, 20, temperature=1.5, top_p=1e-6) == [best] * 20


def test_top_k_keeps_the_k_most_likely():
    logits = _logits(0)
    allowed = set(torch.topk(logits, 3).indices.tolist())
    drawn = set(_draws(logits, 200, temperature=5.0, top_k=3))
    assert drawn == allowed  # at a high temperature all three come up in 200 draws


def test_top_p_keeps_the_smallest_set_holding_p():
    logits = torch.tensor([0.5, 0.3, 0.15, 0.05]).log()
    assert set(_draws(logits, 200, top_p=0.79)) == {0, 1}  # 0.5 + 0.3 reaches 0.79
    assert set(_draws(logits, 300, top_p=0.81)) == {0, 1, 2}  # 0.8 does not reach 0.81
    assert set(_draws(logits, 400, top_p=1.0)) == {0, 1, 2, 3}
    # top-k first: among the 3 left, 0 and 1 hold 0.8 / 0.95 = 0.84 (not 0.8) of the mass
    assert set(_draws(logits, 200, top_k=3, top_p=0.83)) == {0, 1}


def test_same_seed_same_tokens_different_seeds_different():
    flat = torch.zeros(VOCAB)
    assert _draws(flat, 20, seed=1) == _draws(flat, 20, seed=1)
    assert _draws(flat, 20, seed=1) != _draws(flat, 20, seed=2)
    model = _model()
    prompt = [1, 2, 3]

    def sample(seed):
        return list(generate_ids(model, prompt, 20, temperature=2.0, seed=seed))

    assert sample(7) == sample(7)
    assert sample(7) != sample(8)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"top_k": 0}, "top_k"),
        ({"top_k": 2.5}, "top_k"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
    ],
)
def test_invalid_arguments_are_named(options, name):
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        _draws(_logits(0), 1, **options)
    with pytest.raises(ValueError, match=f"'{name}' parameter"):
        generate_ids(_model(), [1], 5, **options)  # at the call, before the first token


def test_generate_refuses_no_tokens_and_no_prompt():
    with pytest.raises(ValueError, match="'max_new_tokens' parameter"):
        generate_ids(_model(), [1], 0)
    with pytest.raises(ValueError, match="prompt_ids is empty"):
        generate_ids(_model(), [], 5)
    with pytest.raises(ValueError, match="1-D"):
        next_token(torch.zeros(2, VOCAB), 1.0, None, None, torch.Generator())


@pytest.mark.parametrize("positions", ["learned", "rotary"])
@pytest.mark.parametrize("prompt_length", [1, 20, 40])  # 40: longer than block_size
def test_cache_and_recompute_pick_the_same_tokens(positions, prompt_length):
    model = _model(positions)
    prompt = list(range(prompt_length))  # ids 0.. (< VOCAB)
    # 30 new tokens run past block_size=32, where the cache gives way to recomputing
    cached = list(generate_ids(model, prompt, 30, temperature=0, use_cache=True))
    recomputed = list(generate_ids(model, prompt, 30, temperature=0, use_cache=False))
    assert cached == recomputed
    assert len(cached) == 30
    assert all(isinstance(t, int) and 0 <= t < VOCAB for t in cached)


def test_streams_one_token_at_a_time_and_restores_the_mode():
    model = _model().train()
    stream = generate_ids(model, [1, 2], 5, temperature=0)
    first = next(stream)
    assert isinstance(first, int)
    assert not model.training  # eval while generating: no dropout
    assert torch.is_grad_enabled()  # no_grad covers the forward, not the caller between tokens
    rest = list(itertools.islice(stream, 10))
    assert len(rest) == 4
    assert model.training  # restored once the stream ends

"""TorchDecoder on ladder's GPT: several sequences of different lengths decoded in one forward
give the logits and caches of decoding each alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.generate.decoders import TorchDecoder
from ladder.models.gpt import GPTConfig, build_gpt


def tiny_gpt(positions: str) -> TorchDecoder:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32, positions=positions)
    return TorchDecoder(build_gpt(config, vocab_size=11))


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_batched_decode_equals_one_sequence_at_a_time(positions: str) -> None:
    decoder = tiny_gpt(positions)
    assert decoder.batched
    prompts = [[1, 2, 3], [4], [5, 6, 7, 8, 9, 10, 1], [2, 2]]
    states = [decoder.prefill(p)[1] for p in prompts]
    alone_states = list(states)
    for step in range(3):  # the caches stay aligned over several steps
        tokens = [(3 * i + step) % 11 for i in range(len(prompts))]
        batched, states = decoder.decode(tokens, states)
        alone = []
        for i, token in enumerate(tokens):
            logits, (alone_states[i],) = decoder.decode([token], [alone_states[i]])
            alone.append(logits[0])
        np.testing.assert_allclose(batched, np.stack(alone), atol=1e-5, rtol=0)
        for got, want in zip(states, alone_states, strict=True):
            assert got[0][0].shape == want[0][0].shape  # no padding kept
            torch.testing.assert_close(got[1][1], want[1][1], atol=1e-5, rtol=0)


def test_later_steps_leave_earlier_states_as_they_were() -> None:
    decoder = tiny_gpt("learned")
    states = [decoder.prefill(p)[1] for p in ([1, 2, 3], [4])]
    _, first = decoder.decode([5, 6], states)
    kept = [[(k.clone(), v.clone()) for k, v in state] for state in first]
    later = first
    for step in range(4):  # written in place into the batch's cache, after the kept views
        _, later = decoder.decode([step, step + 1], later)
    for state, copy in zip(first, kept, strict=True):
        for (k, v), (k0, v0) in zip(state, copy, strict=True):
            assert torch.equal(k, k0) and torch.equal(v, v0)
    # a batch that changes (one sequence leaves, an old state comes back) still agrees
    both, _ = decoder.decode([7, 8], [later[1], first[0]])
    alone = [decoder.decode([t], [s])[0][0] for t, s in ((7, later[1]), (8, first[0]))]
    np.testing.assert_allclose(both, np.stack(alone), atol=1e-5, rtol=0)


def test_equal_lengths_need_no_mask_and_agree() -> None:
    decoder = tiny_gpt("learned")
    states = [decoder.prefill(p)[1] for p in ([1, 2], [3, 4])]
    batched, _ = decoder.decode([5, 6], states)
    alone = [decoder.decode([t], [s])[0][0] for t, s in zip([5, 6], states, strict=True)]
    np.testing.assert_allclose(batched, np.stack(alone), atol=1e-5, rtol=0)


def test_the_gpt_refuses_a_key_mask_of_the_wrong_shape() -> None:
    decoder = tiny_gpt("learned")
    idx = torch.tensor([[1, 2]])
    with pytest.raises(ValueError, match="key_mask must be"):
        decoder.model(idx, None, key_mask=torch.ones(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="positions must have"):
        decoder.model(idx, None, positions=torch.tensor([1, 2]))
    _, past = decoder.model(idx, None)  # a cache of 2 positions, without room
    with pytest.raises(ValueError, match="needs a cache with room"):
        decoder.model(idx[:, :1], past, past_length=2)

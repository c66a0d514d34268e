"""The recurrent language model: shapes, state as cache, causality, tying, learning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ladder.generate.sampling import generate_ids
from ladder.models.rnn_lm import RNNLMConfig, build_rnn_lm
from ladder.train.lm import stream_nll

SMALL = {"embedding_dim": 16, "hidden": 16, "layers": 2, "dropout": 0.0, "block_size": 32}


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_the_state_continues_the_sequence_like_a_cache(cell):
    torch.manual_seed(0)
    model = build_rnn_lm(RNNLMConfig(cell=cell, **SMALL), vocab_size=20).eval()
    idx = torch.randint(0, 20, (2, 12))
    full, _ = model(idx)
    assert full.shape == (2, 12, 20)
    first, state = model(idx[:, :7])
    rest, _ = model(idx[:, 7:], state)
    torch.testing.assert_close(torch.cat([first, rest], dim=1), full, atol=1e-5, rtol=1e-5)


def test_later_tokens_do_not_change_earlier_logits():
    torch.manual_seed(0)
    model = build_rnn_lm(RNNLMConfig(**SMALL), vocab_size=20).eval()
    idx = torch.randint(0, 20, (1, 10))
    changed = idx.clone()
    changed[0, 6] = (changed[0, 6] + 1) % 20
    torch.testing.assert_close(model(idx)[0][:, :6], model(changed)[0][:, :6])


def test_head_and_embedding_are_one_table_and_decay_skips_it():
    model = build_rnn_lm(RNNLMConfig(**SMALL), vocab_size=20)
    assert model.head.weight is model.embedding.weight
    decay, rest = model.param_groups(1e-3, 0.1)
    grouped = [id(p) for group in (decay, rest) for p in group["params"]]
    assert sorted(grouped) == sorted({id(p) for p in model.parameters()})
    assert id(model.embedding.weight) in {id(p) for p in rest["params"]}


def test_it_learns_a_repeated_string_and_generates_its_continuation():
    torch.manual_seed(0)
    text = "abcdefgh" * 40
    ids = np.array([ord(c) - ord("a") for c in text])
    model = build_rnn_lm(RNNLMConfig(**SMALL), vocab_size=8)
    optimizer = torch.optim.AdamW(model.param_groups(1e-2, 0.0))
    x = torch.as_tensor(ids[:-1]).view(1, -1)[:, :256]
    y = torch.as_tensor(ids[1:]).view(1, -1)[:, :256]
    for _ in range(150):
        logits, _ = model(x)
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    nats, n = stream_nll(model, ids, block_size=32)
    assert nats / n < 0.1
    assert list(generate_ids(model, [0, 1, 2], 5, temperature=0)) == [3, 4, 5, 6, 7]

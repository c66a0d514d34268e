"""TokenBatching (trimming, length bucketing) and the Trainer on token ids with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import accuracy, fast_config

from ladder.models.textcnn import TextCNNConfig, build_textcnn
from ladder.train import Trainer
from ladder.train.batching import BUCKET_POOL, TokenBatching

MAX_LENGTH, VOCAB = 12, 24


def right_padded(lengths: np.ndarray, width: int, pad_id: int = 0, seed: int = 0) -> torch.Tensor:
    """Rows of random non-pad ids, `lengths[i]` real tokens each, then `pad_id`."""
    rng = np.random.default_rng(seed)
    X = np.full((len(lengths), width), pad_id, dtype=np.int64)
    for row, n in enumerate(lengths):
        X[row, :n] = rng.integers(pad_id + 1, pad_id + 20, n)
    return torch.as_tensor(X)


def batch_spread(order: torch.Tensor, lengths: torch.Tensor, batch_size: int) -> float:
    """Mean over full batches of (longest - shortest) row length."""
    n_full = len(order) // batch_size
    batches = lengths[order[: n_full * batch_size]].view(n_full, batch_size)
    return float((batches.max(dim=1).values - batches.min(dim=1).values).float().mean())


# ----------------------------------------------------------------------------- trim, lengths


def test_lengths_and_trim():
    batching = TokenBatching(pad_id=0)
    xb = torch.tensor([[5, 3, 0, 0, 0], [2, 0, 0, 0, 0], [7, 8, 9, 0, 0]])
    assert batching.lengths(xb).tolist() == [2, 1, 3]
    trimmed = batching.trim(xb)
    assert trimmed.shape == (3, 3)
    assert torch.equal(trimmed, xb[:, :3])
    assert batching.trim(trimmed).shape == (3, 3)  # nothing more to trim
    full = torch.tensor([[1, 2], [3, 4]])
    assert torch.equal(batching.trim(full), full)


def test_trim_keeps_one_column_of_an_all_padding_batch():
    assert TokenBatching(0).trim(torch.zeros(4, 6, dtype=torch.int64)).shape == (4, 1)


def test_other_pad_id():
    batching = TokenBatching(pad_id=1)
    xb = torch.tensor([[0, 4, 1, 1], [5, 1, 1, 1]])  # 0 is a real token here
    assert batching.lengths(xb).tolist() == [2, 1]
    assert batching.trim(xb).tolist() == [[0, 4], [5, 1]]


def test_sort_by_length_is_stable():
    X = right_padded(np.array([3, 1, 3, 2, 1]), 4)
    assert TokenBatching(0).sort_by_length(X).tolist() == [1, 4, 3, 0, 2]


# ----------------------------------------------------------------------------- order


@pytest.fixture
def lengths() -> torch.Tensor:
    """Lengths 1..100 of 1003 rows (so the last batch of 10 is short)."""
    return torch.as_tensor(np.random.default_rng(1).integers(1, 101, 1003))


def shuffled(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def test_order_is_a_permutation_of_the_input(lengths):
    order = shuffled(len(lengths))
    out = TokenBatching(0).order(order, lengths, 10, torch.Generator().manual_seed(0))
    assert out.dtype == order.dtype and out.shape == order.shape
    assert sorted(out.tolist()) == sorted(order.tolist())


def test_bucketing_puts_similar_lengths_together(lengths):
    order = shuffled(len(lengths))
    out = TokenBatching(0).order(order, lengths, 10, torch.Generator().manual_seed(0))
    bucketed, random = batch_spread(out, lengths, 10), batch_spread(order, lengths, 10)
    assert random > 50  # 10 random lengths of 1..100
    assert bucketed < 0.1 * random


def test_full_batches_are_length_sorted_runs_of_one_pool(lengths):
    batch_size = 10
    order = shuffled(len(lengths))
    out = TokenBatching(0).order(order, lengths, batch_size, torch.Generator().manual_seed(0))
    pool = batch_size * BUCKET_POOL
    expected = []  # each pool sorted by length, cut into batch_size runs
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        rows = chunk[torch.argsort(lengths[chunk], stable=True)].tolist()
        expected += [rows[i : i + batch_size] for i in range(0, len(rows), batch_size)]
    full, short = expected[:-1], expected[-1]
    assert len(short) == 3 and all(len(b) == batch_size for b in full)
    got = out.tolist()
    got_full = [got[i : i + batch_size] for i in range(0, 1000, batch_size)]
    assert sorted(got_full) == sorted(full)  # aligned to batch_size: the same batches
    assert got_full != full  # but shuffled
    assert got[1000:] == short  # the short last batch stays last


def test_order_is_deterministic_for_a_seeded_generator(lengths):
    order = shuffled(len(lengths))
    batching = TokenBatching(0)

    def run(seed: int) -> list[int]:
        return batching.order(order, lengths, 10, torch.Generator().manual_seed(seed)).tolist()

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_no_bucketing_or_a_single_batch_keeps_the_order(lengths):
    order = shuffled(len(lengths))
    generator = torch.Generator().manual_seed(0)
    assert torch.equal(TokenBatching(0, bucket=False).order(order, lengths, 10, generator), order)
    few = order[:8]
    assert torch.equal(TokenBatching(0).order(few, lengths, 10, generator), few)


# ----------------------------------------------------------------------------- trainer


def token_task(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int64 ids (n, MAX_LENGTH): class 1 texts hold token 3, class 0 token 4
    (fillers are 5..VOCAB-1); lengths vary from 2 to MAX_LENGTH."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = np.zeros((n, MAX_LENGTH), dtype=np.int64)
    for row in range(n):
        length = int(rng.integers(2, MAX_LENGTH + 1))
        X[row, :length] = rng.integers(5, VOCAB, length)
        X[row, rng.integers(0, length)] = 3 if y[row] else 4
    return X, y.astype(np.int64)


def textcnn() -> torch.nn.Module:
    config = TextCNNConfig(embedding_dim=16, widths=[2, 3], filters=8, dropout=0.0)
    return build_textcnn(config, (MAX_LENGTH, VOCAB), 2)


class BatchShapes:
    """Records the token ids each forward call in train mode receives."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.batches: list[torch.Tensor] = []
        module.register_forward_pre_hook(self._record)

    def _record(self, module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        if module.training:
            self.batches.append(args[0].detach().clone())


def test_trainer_learns_from_token_ids_with_trimmed_bucketed_batches():
    X, y = token_task(160, seed=0)
    X_val, y_val = token_task(40, seed=1)
    module = textcnn()
    seen = BatchShapes(module)
    trainer = Trainer(
        module,
        fast_config(epochs=8, batch_size=16),
        val_metrics=accuracy,
        batching=TokenBatching(0),
    )
    history = trainer.fit(X, y, X_val, y_val)
    assert history[-1]["val_accuracy"] >= 0.95
    assert history[-1]["train_loss"] < 0.5 * history[0]["train_loss"]
    widths = {xb.shape[1] for xb in seen.batches}
    assert len(widths) > 1 and max(widths) <= MAX_LENGTH
    for xb in seen.batches:
        assert xb.dtype == torch.int64
        assert (xb[:, -1] != 0).any()  # trimmed: no all-padding column on the right
    lengths = [(xb != 0).sum(dim=1) for xb in seen.batches if len(xb) == 16]
    bucketed = np.mean([float(n.max() - n.min()) for n in lengths])
    assert bucketed <= 2  # 160 rows in one pool: runs of the length-sorted rows


def test_bucketing_off_still_trims_but_mixes_lengths():
    X, y = token_task(160, seed=0)
    module = textcnn()
    seen = BatchShapes(module)
    trainer = Trainer(
        module, fast_config(epochs=1, batch_size=16), batching=TokenBatching(0, bucket=False)
    )
    trainer.fit(X, y)
    spreads = [
        float((xb != 0).sum(dim=1).max() - (xb != 0).sum(dim=1).min()) for xb in seen.batches
    ]
    assert np.mean(spreads) > 5
    assert all((xb[:, -1] != 0).any() for xb in seen.batches)


def test_predict_proba_keeps_the_input_order():
    X, y = token_task(60, seed=2)
    trainer = Trainer(textcnn(), fast_config(epochs=2, batch_size=8), batching=TokenBatching(0))
    trainer.fit(X, y)
    prob = trainer.predict_proba(X, batch_size=7)
    assert prob.shape == (60, 2)
    one_by_one = np.concatenate([trainer.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(prob, one_by_one, atol=1e-5)
    reversed_rows = trainer.predict_proba(X[::-1])
    np.testing.assert_allclose(reversed_rows[::-1], prob, atol=1e-5)

"""Teacher-forcing batches of (source, target) pairs, and `Trainer.fit_steps` over them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ladder.config import TrainConfig
from ladder.errors import DataError
from ladder.train import Trainer
from ladder.train.lm_batches import VALIDATION_DRAW
from ladder.train.objective import IGNORE_INDEX, LanguageModeling
from ladder.train.pair_batches import PairBatches

PAD, BOS, EOS = 0, 1, 2
VOCAB = 12


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def counting_pairs(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Source [a, b]; target a, a+1, ..., counting up b-3 steps (ids 3..11): learnable from the
    first source token and the previous target token."""
    rng = np.random.default_rng(seed)
    sources, targets = [], []
    for _ in range(n):
        start, length = int(rng.integers(3, 8)), int(rng.integers(1, 5))
        sources.append(ids(start, 3 + length))
        targets.append(np.arange(start, start + length, dtype=np.int64))
    return sources, targets


class TinySeq2Seq(nn.Module):
    """x (B, 2, L) -> logits (B, L, V): each decoder position sees its input token and the
    first source token."""

    def __init__(self) -> None:
        super().__init__()
        self.source = nn.Embedding(VOCAB, 32)
        self.target = nn.Embedding(VOCAB, 32)
        self.out = nn.Sequential(nn.ReLU(), nn.Linear(32, VOCAB))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        memory = self.source(x[:, 0, :1])  # (B, 1, 32): the first source token
        return self.out(self.target(x[:, 1]) + memory)  # (B, L, V)


def step_config(**overrides) -> TrainConfig:
    base = {
        "batch_size": 8,
        "max_steps": 60,
        "eval_interval": 20,
        "eval_batches": 2,
        "optimizer": {"name": "adamw", "lr": 3e-2},
        "early_stopping": None,
    }
    return TrainConfig.model_validate({**base, **overrides})


# ----------------------------------------------------------------------------- batches


def test_a_batch_pads_sources_shifts_targets_and_ends_them_with_eos():
    batches = PairBatches([ids(5, 6, 7), ids(8)], [ids(9), ids(10, 11, 3, 4)], PAD, BOS, EOS)
    x, y = batches.batch(np.array([0, 1]))
    assert x.dtype == y.dtype == np.int64 and x.shape == (2, 2, 5) and y.shape == (2, 5)
    np.testing.assert_array_equal(x[:, 0], [[5, 6, 7, 0, 0], [8, 0, 0, 0, 0]])
    np.testing.assert_array_equal(x[:, 1], [[1, 9, 0, 0, 0], [1, 10, 11, 3, 4]])
    np.testing.assert_array_equal(y, [[9, 2, -100, -100, -100], [10, 11, 3, 4, 2]])
    np.testing.assert_array_equal(batches.n_targets(np.array([0, 1])), [2, 5])


def test_the_batch_length_is_trimmed_to_its_longest_source_or_target():
    batches = PairBatches([ids(3), ids(4)], [ids(5), ids(6)], PAD, BOS, EOS)
    x, y = batches.batch(np.array([1, 1]))
    assert x.shape == (2, 2, 2) and y.shape == (2, 2)  # target + eos
    long_source = PairBatches([np.full(7, 3), ids(4)], [ids(5), ids(6)], PAD, BOS, EOS)
    x, y = long_source.batch(np.array([1, 0]))
    assert x.shape == (2, 2, 7) and (y[:, 2:] == IGNORE_INDEX).all()


def test_other_special_ids_and_an_empty_target():
    batches = PairBatches([ids(5)], [ids()], pad_id=9, bos_id=7, eos_id=8)
    x, y = batches.batch(np.array([0]))
    np.testing.assert_array_equal(x, [[[5], [7]]])
    np.testing.assert_array_equal(y, [[8]])


def test_starts_are_a_pure_function_of_their_arguments_and_lie_in_range():
    batches = PairBatches(*counting_pairs(30), PAD, BOS, EOS)
    starts = batches.starts(seed=1, draw=2, n_batches=4, batch_size=5)
    assert starts.shape == (4, 5) and starts.dtype == np.int64
    assert starts.min() >= 0 and starts.max() < len(batches) == 30
    np.testing.assert_array_equal(starts, batches.starts(1, 2, 4, 5))
    assert not np.array_equal(starts, batches.starts(1, 3, 4, 5))


def test_n_targets_keeps_the_shape_of_two_dimensional_rows_and_block_size_is_the_mean():
    batches = PairBatches([ids(3)] * 3, [ids(4), ids(4, 5), ids(4, 5, 6, 7)], PAD, BOS, EOS)
    rows = np.array([[0, 1], [2, 2]])
    np.testing.assert_array_equal(batches.n_targets(rows), [[2, 3], [5, 5]])
    assert batches.block_size == 3  # (2 + 3 + 5) / 3 rounded


@pytest.mark.parametrize(
    ("sources", "targets", "message"),
    [
        ([], [], r"the training split has no pairs"),
        ([ids(3)], [ids(4), ids(5)], r"has 1 sources but 2 targets"),
        ([ids(3)], [np.array([[4]])], r"pair 0: the target ids must be a 1-d array"),
        ([np.array([0.5])], [ids(4)], r"pair 0: the source ids must be a 1-d array"),
        ([ids(3)], [ids(-1)], r"non-negative integers"),
    ],
)
def test_bad_pairs_are_data_errors(sources, targets, message):
    with pytest.raises(DataError, match=message):
        PairBatches(sources, targets, PAD, BOS, EOS)


def test_the_split_name_is_in_the_message():
    with pytest.raises(DataError, match=r"the validation split has no pairs"):
        PairBatches([], [], PAD, BOS, EOS, split="validation")


# ----------------------------------------------------------------------------- training


def test_fit_steps_learns_from_pair_batches():
    train = PairBatches(*counting_pairs(200, seed=0), PAD, BOS, EOS)
    val = PairBatches(*counting_pairs(40, seed=1), PAD, BOS, EOS, split="validation")
    torch.manual_seed(0)
    trainer = Trainer(TinySeq2Seq(), step_config(), objective=LanguageModeling())
    history = trainer.fit_steps(train, val)
    assert [row["step"] for row in history] == [20, 40, 60]
    assert all(row["tokens_per_s"] > 0 for row in history)
    assert history[0]["train_loss"] > 1.0  # near log(12) = 2.5 at first
    assert history[-1]["val_loss"] < 0.5 * history[0]["train_loss"]


def test_validation_loss_is_the_mean_over_the_counted_targets_of_the_fixed_batches():
    train = PairBatches(*counting_pairs(50, seed=0), PAD, BOS, EOS)
    val = PairBatches(*counting_pairs(20, seed=1), PAD, BOS, EOS, split="validation")
    config = step_config(max_steps=2, eval_interval=2, batch_size=4, eval_batches=3)
    trainer = Trainer(TinySeq2Seq(), config, objective=LanguageModeling(), seed=7)
    (row,) = trainer.fit_steps(train, val)
    total, count = 0.0, 0
    for rows in val.starts(7, VALIDATION_DRAW, 3, 4):
        x, y = val.batch(rows)
        with torch.no_grad():
            logits = trainer.module(torch.as_tensor(x))
        total += nn.functional.cross_entropy(
            logits.flatten(0, 1), torch.as_tensor(y).flatten(), reduction="sum"
        ).item()
        count += int(val.n_targets(rows).sum())
    assert row["val_loss"] == pytest.approx(total / count, rel=1e-5)

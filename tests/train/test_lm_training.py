"""Step-based language-model training: `Trainer.fit_steps` over windows of a token memmap."""

from __future__ import annotations

import math
import os
import signal

import numpy as np
import pytest
import torch
from train_helpers import Crash, CrashAt, same_weights

from ladder.config import TrainConfig
from ladder.data.token_windows import read_tokens, write_tokens
from ladder.errors import DataError, LadderError, TrainingInterrupted
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.train import Callback, Checkpoint, History, Trainer
from ladder.train.lm_batches import VALIDATION_DRAW, TokenWindows
from ladder.train.objective import IGNORE_INDEX, LanguageModeling

VOCAB, BLOCK = 12, 16


def corpus(n: int = 3000) -> np.ndarray:
    """A repetitive stream: 0 1 2 ... 11 0 1 2 ... (every next token is predictable)."""
    return (np.arange(n) % VOCAB).astype(np.uint16)


def tiny_gpt(dropout: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=BLOCK, dropout=dropout)
    return build_gpt(config, VOCAB)


def lm_config(**overrides) -> TrainConfig:
    base = {
        "batch_size": 4,
        "max_steps": 50,
        "eval_interval": 20,
        "eval_batches": 2,
        "optimizer": {"name": "adamw", "lr": 1e-2, "weight_decay": 0.1},
        "scheduler": {"name": "cosine", "warmup_fraction": 0.1},
        "grad_clip": 1.0,
        "early_stopping": None,
    }
    return TrainConfig.model_validate({**base, **overrides})


def splits(tmp_path, mask: np.ndarray | None = None) -> tuple[TokenWindows, TokenWindows]:
    """Training and validation windows of `corpus()` read back from a memmap on disk."""
    path = write_tokens(corpus(), tmp_path / "tokens.bin", VOCAB)
    tokens = read_tokens(path, VOCAB)
    train_mask = mask[:2400] if mask is not None else None
    val_mask = mask[2400:] if mask is not None else None
    return (
        TokenWindows(tokens[:2400], BLOCK, mask=train_mask),
        TokenWindows(tokens[2400:], BLOCK, mask=val_mask, split="validation"),
    )


def without_timing(history: list[dict]) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k not in ("seconds", "tokens_per_s")} for row in history
    ]


# ----------------------------------------------------------------------------- training


def test_loss_falls_on_a_repetitive_corpus_and_rows_have_every_field(tmp_path):
    train, val = splits(tmp_path)
    trainer = Trainer(tiny_gpt(), lm_config(), objective=LanguageModeling())
    history = trainer.fit_steps(train, val)
    assert [row["epoch"] for row in history] == [1, 2, 3]
    assert [row["step"] for row in history] == [20, 40, 50]  # the last interval is short
    assert trainer.step == 50
    for row in history:
        assert list(row) == [
            "epoch", "step", "lr", "train_loss", "val_loss", "tokens_per_s", "seconds",
        ]  # fmt: skip
        assert row["tokens_per_s"] > 0 and row["seconds"] > 0
    assert history[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine to min_lr 0 at max_steps
    assert history[0]["train_loss"] > 1.0  # starts near log(12) = 2.5
    assert history[-1]["val_loss"] < 0.5 < history[0]["train_loss"] / 3


def test_without_validation_rows_have_no_val_loss(tmp_path):
    train, _ = splits(tmp_path)
    history = Trainer(
        tiny_gpt(), lm_config(max_steps=4, eval_interval=2), objective=LanguageModeling()
    ).fit_steps(train)
    assert len(history) == 2 and all("val_loss" not in row for row in history)


def test_validation_loss_is_the_mean_over_the_fixed_windows(tmp_path):
    train, val = splits(tmp_path)
    config = lm_config(max_steps=3, eval_interval=3, batch_size=3, eval_batches=2)
    trainer = Trainer(tiny_gpt(), config, objective=LanguageModeling(), seed=5)
    (row,) = trainer.fit_steps(train, val)
    starts = val.starts(5, VALIDATION_DRAW, 2, 3)
    x, y = val.batch(starts.reshape(-1))
    with torch.no_grad():
        logits, _ = trainer.module(torch.as_tensor(x))
    expected = torch.nn.functional.cross_entropy(logits.flatten(0, 1), torch.as_tensor(y).flatten())
    assert row["val_loss"] == pytest.approx(expected.item(), rel=1e-5)


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """2 batches of 4 windows per step = 1 batch of 8: the same windows, the same steps."""
    train, _ = splits(tmp_path)
    models = []
    for batch_size, accumulate in ((8, 1), (4, 2)):
        config = lm_config(max_steps=6, eval_interval=3, batch_size=batch_size)
        config = config.model_copy(update={"accumulate_steps": accumulate})
        trainer = Trainer(tiny_gpt(), config, objective=LanguageModeling())
        trainer.fit_steps(train)
        models.append(trainer.module.state_dict())
    big, accumulated = models
    assert all(torch.allclose(big[k], accumulated[k], atol=1e-5) for k in big)


def test_bf16_autocast_trains(tmp_path):
    train, val = splits(tmp_path)
    config = lm_config(max_steps=4, eval_interval=2, precision="bf16")
    history = Trainer(tiny_gpt(), config, objective=LanguageModeling()).fit_steps(train, val)
    assert all(math.isfinite(row["val_loss"]) for row in history)


# ----------------------------------------------------------------------------- loss masks


def test_masked_targets_do_not_count(tmp_path):
    """Only the targets the mask counts (here every token 5) are in the validation loss."""
    mask = (corpus() == 5).astype(np.uint8)
    train, val = splits(tmp_path, mask)
    config = lm_config(max_steps=2, eval_interval=2, batch_size=2, eval_batches=1)
    trainer = Trainer(tiny_gpt(), config, objective=LanguageModeling())
    (row,) = trainer.fit_steps(train, val)
    x, y = val.batch(val.starts(0, VALIDATION_DRAW, 1, 2)[0])
    assert set(np.unique(y)) == {IGNORE_INDEX, 5}
    with torch.no_grad():
        logits, _ = trainer.module(torch.as_tensor(x))
    counted = torch.as_tensor(y) == 5
    expected = torch.nn.functional.cross_entropy(
        logits[counted], torch.full((int(counted.sum()),), 5)
    )
    assert row["val_loss"] == pytest.approx(expected.item(), rel=1e-5)
    everything = torch.nn.functional.cross_entropy(
        logits.flatten(0, 1), torch.as_tensor(x).roll(-1, 1).flatten()
    )
    assert abs(row["val_loss"] - everything.item()) > 1e-3  # the mask made a difference


def test_batches_whose_targets_are_all_masked_are_harmless(tmp_path):
    """Most windows hold no counted target: their steps have zero weight, nothing is NaN."""
    mask = np.zeros(3000, dtype=np.uint8)
    mask[100:110] = mask[2500:2510] = 1  # a few counted tokens in each split
    train, _ = splits(tmp_path, mask)
    trainer = Trainer(
        tiny_gpt(), lm_config(max_steps=6, eval_interval=3), objective=LanguageModeling()
    )
    history = trainer.fit_steps(train)
    assert all(torch.isfinite(p).all() for p in trainer.module.parameters())
    assert all(math.isfinite(row["train_loss"]) or math.isnan(row["train_loss"]) for row in history)


# ----------------------------------------------------------------------------- resume


def resumable_lm(
    directory, train, val, crash_at: int | None = None, resume: bool = False, extra=()
) -> Trainer | None:
    """A GPT with dropout, accumulation, a schedule, early stopping and checkpoints every 3
    steps; None when it crashed."""
    config = lm_config(
        accumulate_steps=2,
        checkpoint_every_steps=3,
        early_stopping={"monitor": "val_loss", "patience": 50},
        max_steps=16,
        eval_interval=5,
    )
    callbacks = [Checkpoint(directory), CrashAt(crash_at), History(), *extra]
    trainer = Trainer(
        tiny_gpt(dropout=0.2), config, objective=LanguageModeling(), callbacks=callbacks, seed=3
    )
    try:
        trainer.fit_steps(train, val, resume_from=directory if resume else None)
    except Crash:
        return None
    return trainer


@pytest.mark.parametrize("crash_at", [4, 5, 12])  # mid-interval, an interval's end, interval 3
def test_resume_after_a_crash_is_exact(tmp_path, crash_at):
    mask = (np.arange(3000) % 3 != 0).astype(np.uint8)
    train, val = splits(tmp_path, mask)
    reference = resumable_lm(tmp_path / "reference", train, val)
    assert resumable_lm(tmp_path / "crashed", train, val, crash_at=crash_at) is None
    resumed = resumable_lm(tmp_path / "crashed", train, val, resume=True)
    assert same_weights(resumed.module, reference.module)
    assert without_timing(resumed.history) == without_timing(reference.history)
    assert [row["step"] for row in resumed.history] == [5, 10, 15, 16]


def test_sigterm_checkpoints_and_resume_goes_on_exactly(tmp_path):
    train, val = splits(tmp_path)
    reference = resumable_lm(tmp_path / "reference", train, val)

    class Stop(Callback):
        def on_batch_end(self, trainer, batch_size, loss):
            if trainer.step == 7 and trainer.batch % 2 == 1:  # mid-step: the step is finished
                os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="stopped by SIGTERM at epoch 2, step 8"):
        resumable_lm(tmp_path / "stopped", train, val, extra=[Stop()])
    resumed = resumable_lm(tmp_path / "stopped", train, val, resume=True)
    assert same_weights(resumed.module, reference.module)
    assert without_timing(resumed.history) == without_timing(reference.history)


def test_progress_lines_count_intervals(tmp_path, monkeypatch):
    from ladder.train.callbacks import epoch_line

    line = epoch_line("gpt", 2, 10, {"epoch": 2, "step": 400, "lr": 1e-3, "tokens_per_s": 12345.6})
    assert line == "gpt epoch 2/10: step 400, lr 0.001, tokens_per_s 12,346 (0.0 s)"
    seen = []

    class Intervals(Callback):
        def on_train_begin(self, trainer):
            seen.append(trainer.n_epochs)

    train, _ = splits(tmp_path)
    Trainer(
        tiny_gpt(),
        lm_config(max_steps=5, eval_interval=2),
        callbacks=[Intervals()],
        objective=LanguageModeling(),
    ).fit_steps(train)
    assert seen == [3]


# ----------------------------------------------------------------------------- bad input


def test_a_split_shorter_than_one_window_is_a_data_error():
    with pytest.raises(DataError) as info:
        TokenWindows(np.zeros(40, dtype=np.uint16), 64)
    assert str(info.value) == (
        "the training split has 40 tokens, fewer than one window of block_size 64 + 1; "
        "lower block_size or give more text"
    )
    with pytest.raises(DataError, match="the validation split has 64 tokens"):
        TokenWindows(np.zeros(64, dtype=np.uint16), 64, split="validation")
    TokenWindows(np.zeros(65, dtype=np.uint16), 64)  # exactly one window


def test_a_mask_of_another_length_or_all_zeros_is_a_data_error():
    tokens = corpus(100)
    with pytest.raises(DataError, match="loss mask has 99 values for 100 tokens"):
        TokenWindows(tokens, 8, mask=np.ones(99, dtype=np.uint8))
    with pytest.raises(DataError, match="the training split's loss mask counts no token"):
        TokenWindows(tokens, 8, mask=np.zeros(100, dtype=np.uint8))


def test_fit_steps_needs_the_language_modeling_objective(tmp_path):
    train, _ = splits(tmp_path)
    with pytest.raises(LadderError, match="objective must be LanguageModeling, not Classification"):
        Trainer(tiny_gpt(), lm_config()).fit_steps(train)

"""A training run in a process of its own, for the kill / resume and torchrun tests.

    python worker.py OUT [--resume] [--epochs 3] [--sleep 0.05] [--dropout 0.3] [--noise 0.01]
                         [--lm]

Trains a small MLP on fixed blobs with dropout, a cosine schedule with warm-up, early stopping
(patience large enough not to stop), a noise augmentation and a checkpoint every 2 steps into
OUT/checkpoints. Rank 0 writes OUT/final.safetensors and OUT/history.json at the end; each rank
writes its pid to OUT/pid-RANK first. On SIGTERM it exits with TrainingInterrupted's code (143).
Under torchrun (WORLD_SIZE > 1) it trains with DDP on CPU. With --lm it trains a tiny GPT with
`fit_steps` instead (`--epochs` eval intervals of 3 steps, 2 batches accumulated per step) on a
repetitive token stream whose loss mask leaves every third token out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from train_helpers import accuracy, fast_config, make_blobs, small_mlp

from ladder.errors import TrainingInterrupted
from ladder.models.gpt import GPTConfig, build_gpt
from ladder.train import Callback, Checkpoint, Trainer, distributed
from ladder.train.lm_batches import TokenWindows
from ladder.train.objective import LanguageModeling


class Slow(Callback):
    """Sleeps after every batch, so that a test can kill the run mid-epoch."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_batch_end(self, trainer, batch_size, loss):
        time.sleep(self.seconds)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.3)
    parser.add_argument("--noise", type=float, default=0.01)
    parser.add_argument("--lm", action="store_true")
    args = parser.parse_args()

    torch.set_num_threads(1)
    distributed.init_from_env("cpu")
    rank = distributed.rank()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"pid-{rank}").write_text(str(os.getpid()))

    if args.lm:
        return train_lm(args, rank)
    X, y = make_blobs(150)
    torch.manual_seed(0)
    module = small_mlp(dropout=args.dropout)
    config = fast_config(
        epochs=args.epochs,
        batch_size=16,
        scheduler={"name": "cosine", "warmup_epochs": 1},
        early_stopping={"monitor": "val_loss", "patience": 50},
        checkpoint_every_steps=2,
    )
    identity = {"model_type": "mlp", "model_config": {"hidden": [16]}, "n_classes": 3}
    callbacks = [Checkpoint(args.out / "checkpoints", identity=identity), Slow(args.sleep)]
    noise = args.noise

    def transform(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch + noise * torch.randn(batch.shape, generator=generator)

    trainer = Trainer(
        module,
        config,
        callbacks=callbacks,
        val_metrics=accuracy,
        train_transform=transform if noise else None,
    )
    resume = args.out / "checkpoints" if args.resume else None
    try:
        history = trainer.fit(X[:120], y[:120], X[120:], y[120:], resume_from=resume)
    except TrainingInterrupted as interrupted:
        print(interrupted, flush=True)
        return interrupted.exit_code
    finally:
        distributed.cleanup()
    if rank == 0:
        save_results(args.out, module, history)
    return 0


def train_lm(args: argparse.Namespace, rank: int) -> int:
    """The --lm run: a GPT trained by `fit_steps` on masked windows of a token stream."""
    tokens = (np.arange(3000) % 12).astype(np.uint16)
    mask = (np.arange(3000) % 3 != 0).astype(np.uint8)
    train = TokenWindows(tokens[:2400], 16, mask=mask[:2400])
    val = TokenWindows(tokens[2400:], 16, mask=mask[2400:], split="validation")
    torch.manual_seed(0)
    gpt = GPTConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, dropout=args.dropout)
    module = build_gpt(gpt, 12)
    config = fast_config(
        batch_size=4,
        max_steps=3 * args.epochs,
        eval_interval=3,
        eval_batches=2,
        accumulate_steps=2,
        scheduler={"name": "cosine", "warmup_fraction": 0.2},
        grad_clip=1.0,
        checkpoint_every_steps=2,
    )
    callbacks = [Checkpoint(args.out / "checkpoints"), Slow(args.sleep)]
    trainer = Trainer(module, config, callbacks=callbacks, objective=LanguageModeling())
    resume = args.out / "checkpoints" if args.resume else None
    try:
        history = trainer.fit_steps(train, val, resume_from=resume)
    except TrainingInterrupted as interrupted:
        print(interrupted, flush=True)
        return interrupted.exit_code
    finally:
        distributed.cleanup()
    if rank == 0:
        save_results(args.out, module, history)
    return 0


def save_results(out: Path, module: torch.nn.Module, history: list[dict]) -> None:
    """OUT/final.safetensors and OUT/history.json (without timings)."""
    weights = {k: v.clone() for k, v in module.state_dict().items()}  # tied weights apart
    save_file(weights, str(out / "final.safetensors"))
    timings = ("seconds", "tokens_per_s")
    rows = [{k: v for k, v in row.items() if k not in timings} for row in history]
    (out / "history.json").write_text(json.dumps(rows))


if __name__ == "__main__":
    sys.exit(main())

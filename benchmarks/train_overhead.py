"""Claim: ladder's Trainer adds almost nothing to a plain PyTorch training loop.

The same LeNet-5 on the same synthetic images (4096 x 1x32x32, 10 classes), batch size 64,
AdamW, same thread count, trained by a hand-written loop and by `ladder.train.Trainer` (with
the in-memory History callback, no early stopping, no files). The two alternate A/B after a
warm-up; the script prints the median samples/s of each and the ratio ladder / plain (and,
less sensitive to a machine whose load drifts, the median of the rounds' own ratios).

Run: .venv/bin/python benchmarks/train_overhead.py [--rounds 15] [--epochs 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from ladder.config import TrainConfig
from ladder.models.cnn import CNNConfig, build_cnn
from ladder.train import History, Trainer

N, SHAPE, CLASSES, BATCH, LR, WEIGHT_DECAY = 4096, (1, 32, 32), 10, 64, 1e-3, 1e-4
GOAL = 0.97


def make_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Fixed random images, labelled by a random linear teacher (so the task is learnable)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, *SHAPE)).astype(np.float32)
    teacher = rng.normal(size=(int(np.prod(SHAPE)), CLASSES)).astype(np.float32)
    y = (X.reshape(N, -1) @ teacher).argmax(axis=1).astype(np.int64)
    return X, y


def new_lenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_cnn(CNNConfig(arch="lenet5"), SHAPE, CLASSES)


def plain_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """The idiomatic plain loop: shuffled index batches over in-memory tensors. Samples/s."""
    start = time.perf_counter()
    model = new_lenet().to(device)
    X_t, y_t = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(X_t), generator=generator).to(device).split(BATCH):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(model(X_t[idx]), y_t[idx])
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * len(X) / (time.perf_counter() - start)


def ladder_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """ladder's Trainer with the same model, data and optimizer. Samples/s."""
    start = time.perf_counter()
    config = TrainConfig(
        epochs=epochs,
        batch_size=BATCH,
        optimizer={"name": "adamw", "lr": LR, "weight_decay": WEIGHT_DECAY},
        early_stopping=None,
    )
    trainer = Trainer(new_lenet(), config, device=device, callbacks=[History()])
    trainer.fit(X, y)  # ends by reading the epoch's mean loss, which synchronizes a GPU
    return epochs * len(X) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="A/B rounds (at least 3)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per timed run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the same for both loops
    X, y = make_data()
    plain_loop(X, y, 1, device), ladder_loop(X, y, 1, device)  # warm-up: allocator, kernels

    results: dict[str, list[float]] = {"plain": [], "ladder": []}
    runners = {"plain": plain_loop, "ladder": ladder_loop}
    for r in range(max(3, args.rounds)):
        order = ("plain", "ladder") if r % 2 == 0 else ("ladder", "plain")
        for name in order:
            results[name].append(runners[name](X, y, args.epochs, device))
        print(
            f"round {r + 1}: plain {results['plain'][-1]:,.0f} samples/s, "
            f"ladder {results['ladder'][-1]:,.0f} samples/s"
        )
    plain, ladder = (statistics.median(results[k]) for k in ("plain", "ladder"))
    ratio = ladder / plain
    pairs = zip(results["ladder"], results["plain"], strict=True)
    paired = statistics.median([a / b for a, b in pairs])
    print(f"torch {torch.__version__} on {device}, {threads} threads, LeNet-5, {N} images")
    print(f"median samples/s: plain {plain:,.0f}  ladder {ladder:,.0f}")
    print(f"ratio ladder/plain: {ratio:.3f} (goal >= {GOAL}) {'OK' if ratio >= GOAL else 'BELOW'}")
    print(f"median of the per-round ratios: {paired:.3f}")


if __name__ == "__main__":
    main()

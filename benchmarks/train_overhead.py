"""Claim: ladder trains as fast as a plain PyTorch loop (>= 0.97x) and faster than skorch.

The same LeNet-5 on the same synthetic images (4096 x 1x32x32, 10 classes, seeded), batch size
64, AdamW (lr 1e-3, weight decay 1e-4), shuffled batches, the same torch thread count, trained by
- plain:     a hand-written loop over shuffled index batches of in-memory tensors;
- ladder:    `ladder.train.Trainer` (in-memory History callback, no early stopping);
- estimator: `ladder.models.estimator.NeuralClassifier(model="cnn", arch="lenet5")`, the
             scikit-learn API over the same Trainer (input validation included);
- skorch:    `skorch.NeuralNetClassifier` (train_split=None, default callbacks, verbose=0,
             CrossEntropyLoss since the module returns logits, shuffled batches).
After a warm-up the contenders run in turn, the order rotating every round; the script prints
the median samples/s of each and the ratios ladder/plain, ladder/skorch, estimator/skorch (and,
less sensitive to a machine whose load drifts, the median of the rounds' own ratios).

skorch is a bench-only extra (pip install -e ".[bench]", which `make bench` does); without it
the script compares the other three.
Run: .venv/bin/python benchmarks/train_overhead.py [--rounds 7] [--epochs 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from ladder.config import TrainConfig
from ladder.models.cnn import CNNConfig, build_cnn
from ladder.models.estimator import NeuralClassifier
from ladder.train import History, Trainer

N, SHAPE, CLASSES, BATCH, LR, WEIGHT_DECAY = 4096, (1, 32, 32), 10, 64, 1e-3, 1e-4
GOAL_PLAIN = 0.97
Runner = Callable[[np.ndarray, np.ndarray, int, torch.device], float]


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


def samples_per_second(epochs: int, start: float, device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return epochs * N / (time.perf_counter() - start)


def plain_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """The idiomatic plain loop: shuffled index batches over in-memory tensors."""
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
    return samples_per_second(epochs, start, device)


def ladder_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """ladder's Trainer with the same model, data and optimizer."""
    start = time.perf_counter()
    config = TrainConfig(
        epochs=epochs,
        batch_size=BATCH,
        optimizer={"name": "adamw", "lr": LR, "weight_decay": WEIGHT_DECAY},
        early_stopping=None,
    )
    Trainer(new_lenet(), config, device=device, callbacks=[History()]).fit(X, y)
    return samples_per_second(epochs, start, device)


def estimator_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """ladder's scikit-learn estimator: the same Trainer behind fit(X, y)."""
    start = time.perf_counter()
    NeuralClassifier(
        model="cnn",
        arch="lenet5",
        epochs=epochs,
        batch_size=BATCH,
        optimizer__name="adamw",
        optimizer__lr=LR,
        optimizer__weight_decay=WEIGHT_DECAY,
        device=str(device),
    ).fit(X, y)
    return samples_per_second(epochs, start, device)


def skorch_loop(X: np.ndarray, y: np.ndarray, epochs: int, device: torch.device) -> float:
    """skorch's NeuralNetClassifier with the same model, data and optimizer."""
    from skorch import NeuralNetClassifier

    start = time.perf_counter()
    net = NeuralNetClassifier(
        new_lenet(),
        criterion=torch.nn.CrossEntropyLoss,  # the module returns logits
        optimizer=torch.optim.AdamW,
        optimizer__lr=LR,
        optimizer__weight_decay=WEIGHT_DECAY,
        max_epochs=epochs,
        batch_size=BATCH,
        iterator_train__shuffle=True,  # as the other loops (skorch's default is False)
        train_split=None,
        verbose=0,
        device=str(device),
    )
    net.fit(X, y)
    return samples_per_second(epochs, start, device)


RUNNERS: dict[str, Runner] = {
    "plain": plain_loop,
    "ladder": ladder_loop,
    "estimator": estimator_loop,
    "skorch": skorch_loop,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="rounds (at least 3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per timed run")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    if importlib.util.find_spec("skorch") is None:
        print("skorch is not installed (pip install -e '.[bench]'): comparing without it")
        del RUNNERS["skorch"]
    threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # the same for every contender
    X, y = make_data()
    for runner in RUNNERS.values():  # warm-up: allocator, kernels, imports
        runner(X[: BATCH * 4], y[: BATCH * 4], 1, device)

    names = list(RUNNERS)
    results: dict[str, list[float]] = {name: [] for name in names}
    for r in range(max(3, args.rounds)):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for name in order:
            results[name].append(RUNNERS[name](X, y, args.epochs, device))
        print(f"round {r + 1}: " + ", ".join(f"{k} {results[k][-1]:,.0f}" for k in names))

    median = {name: statistics.median(values) for name, values in results.items()}
    print(f"torch {torch.__version__} on {device}, {threads} threads, LeNet-5, {N} images")
    print("median samples/s: " + "  ".join(f"{k} {v:,.0f}" for k, v in median.items()))
    for a, b, goal in (("ladder", "plain", GOAL_PLAIN), ("ladder", "skorch", 1.0)):
        if b not in median:
            continue
        ratio, paired = median[a] / median[b], _paired(results[a], results[b])
        verdict = "OK" if ratio >= goal else "BELOW"
        print(f"ratio {a}/{b}: {ratio:.3f} (goal >= {goal}) {verdict}; per round {paired:.3f}")
    a, b = "estimator", "skorch" if "skorch" in median else "plain"
    ratio, paired = median[a] / median[b], _paired(results[a], results[b])
    print(f"ratio {a}/{b}: {ratio:.3f}; per round {paired:.3f}")


def _paired(a: list[float], b: list[float]) -> float:
    """Median of the per-round ratios a/b."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


if __name__ == "__main__":
    main()

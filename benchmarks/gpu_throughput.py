"""Figure: LeNet-5 and MLP training throughput on CUDA with bf16, and the fraction of peak FLOP/s.

FLOPs of one training step (forward + backward) are counted with PyTorch's FlopCounterMode;
achieved FLOP/s = FLOPs per step x steps per second, against the GPU's dense bf16 peak
(`--peak-tflops`, default 989 for an H100 SXM). Prints a skip line where no CUDA device exists.

Run: .venv/bin/python benchmarks/gpu_throughput.py [--batch-size 1024] [--epochs 3]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ladder.config import TrainConfig
from ladder.models.cnn import CNNConfig, build_cnn
from ladder.models.mlp import MLPConfig, build_mlp
from ladder.train import Trainer

N, CLASSES = 65536, 10


def models() -> dict[str, tuple[torch.nn.Module, tuple[int, ...]]]:
    """The two benchmarked models with their input shapes."""
    return {
        "lenet5": (build_cnn(CNNConfig(arch="lenet5"), (1, 32, 32), CLASSES), (1, 32, 32)),
        "mlp": (build_mlp(MLPConfig(hidden=[1024, 1024]), (784,), CLASSES), (784,)),
    }


def step_flops(module: torch.nn.Module, shape: tuple[int, ...], batch: int) -> int:
    """FLOPs of one forward + backward pass on a batch (counted, not estimated)."""
    x = torch.randn(batch, *shape, device="cuda")
    y = torch.randint(0, CLASSES, (batch,), device="cuda")
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast("cuda", dtype=torch.bfloat16):
        F.cross_entropy(module(x).float(), y).backward()
    module.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def main() -> None:
    """Train each model with ladder's Trainer on CUDA in bf16 and print the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--peak-tflops", type=float, default=989.0)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("skipped: no CUDA device on this machine")
        return
    print(
        f"{torch.cuda.get_device_name()} torch {torch.__version__}, bf16, batch {args.batch_size}"
    )
    rng = np.random.default_rng(0)
    for name, (module, shape) in models().items():
        X = rng.normal(size=(N, *shape)).astype(np.float32)
        y = rng.integers(0, CLASSES, N).astype(np.int64)
        config = TrainConfig(
            epochs=args.epochs, batch_size=args.batch_size, precision="bf16", early_stopping=None
        )
        trainer = Trainer(module, config, device="cuda")
        trainer.fit(X[: args.batch_size * 4], y[: args.batch_size * 4])  # warm-up
        torch.cuda.synchronize()
        start = time.perf_counter()
        trainer.fit(X, y)
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        samples_per_s = args.epochs * N / seconds
        flops = step_flops(module.cuda(), shape, args.batch_size) / args.batch_size
        achieved = flops * samples_per_s / 1e12
        fraction = achieved / args.peak_tflops
        print(
            f"{name}: {samples_per_s:,.0f} samples/s, {flops / 1e6:.2f} MFLOP/sample, "
            f"{achieved:.2f} TFLOP/s = {fraction:.2%} of the {args.peak_tflops:g} TFLOP/s peak"
        )


if __name__ == "__main__":
    main()

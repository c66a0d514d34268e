"""Claims of the NumPy rungs (`ladder.scratch`) against their PyTorch twins, on the CPU:

1. accuracy: the NumPy LeNet-5 (`type: scratch_cnn`) reaches the test accuracy of the PyTorch
   LeNet-5 (`type: cnn, arch: lenet5`) within 0.5 point on digits (`builtin:digits`, split test
   0.2, val 0.1, stratified; image_size 32), both trained by `ladder.runner.ladder.run` with
   examples/digits.yaml's train section (30 epochs, batch 64, AdamW 1e-3 / 1e-4, cosine with
   1 warm-up epoch, kaiming init, grad_clip 1.0, early stopping on val_loss, patience 5); the
   same run trains `mlp` and `scratch_mlp` (hidden [256, 128], dropout 0.2, as digits.yaml's
   mlp). Accuracy and train_seconds come from each model's metrics.json, the epochs trained
   and the median epoch's seconds (steadier than the total on a loaded machine, and free of
   the first model's start-up) from its history.csv;
2. convolution speed: `ladder.scratch.conv.Conv2d` (im2col and one matrix product) takes at
   most 3x the time of `torch.nn.functional.conv2d`, float32, on LeNet-5's two convolutions at
   batch 64 (conv1: 1 -> 6 channels, 5x5, 32x32 input; conv2: 6 -> 16, 5x5, 14x14; no padding,
   as lenet.py), forward and forward+backward (both compute the input's, the weight's and the
   bias's gradients; a third row, not part of the goal, lets torch skip conv1's input gradient
   as it does inside LeNet-5, where NumPy still computes it);
3. MLP speed: one training step of the NumPy MLP (`ladder.scratch.mlp`: forward with dropout
   0.2, `softmax_cross_entropy`, backward, `ladder.scratch.optim.AdamW`) takes at most 2x the
   time of the same step in PyTorch (`mlp` rung's module, `F.cross_entropy`, backward,
   `torch.optim.AdamW`), digits' shape: 64 inputs -> [256, 128] -> 10, batch 64. Also reported
   (no goal of its own): the whole rung, samples/s of `Trainer.fit` on `scratch_mlp` vs `mlp`
   over a few epochs of the digits images (8x8, scaled to [0, 1]). Inside the rung the NumPy
   passes hold BLAS to one thread whatever `--threads` says (`scratch_bridge`: torch's OpenMP
   threads, which spin while they wait, and OpenBLAS's threads otherwise fight over the cores).

The speed checks run each thread count of `--threads` with the same count for both libraries
(`torch.set_num_threads` and NumPy's BLAS through threadpoolctl); small matrices often run
faster on one BLAS thread. Contenders alternate within every round, the order flipping each
round; each round times `--reps` calls of each (claim 3's step: twice as many) after one
warm-up call, and the script prints the medians per call and the median of the rounds' own
ratios, numpy / torch (time), so that a machine whose load drifts hurts both alike. Claim 1
runs with `--run-threads` (default: as `ladder run` leaves them).

Run: .venv/bin/python benchmarks/scratch.py [--claims 1,2,3] [--rounds 25] [--reps 10]
     [--threads 1,2] [--rung-epochs 3] [--run-threads 0] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
import yaml
from sklearn.datasets import load_digits
from threadpoolctl import threadpool_info, threadpool_limits

from ladder.config import TrainConfig
from ladder.registry import get_spec
from ladder.runner.ladder import run
from ladder.scratch.conv import Conv2d
from ladder.scratch.losses import softmax_cross_entropy
from ladder.scratch.mlp import mlp
from ladder.scratch.optim import AdamW
from ladder.train import Trainer

DIGITS_YAML = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"
GOAL_ACCURACY, GOAL_CONV, GOAL_MLP = 0.5, 3.0, 2.0  # points; numpy / torch time
BATCH, LR, WEIGHT_DECAY = 64, 1e-3, 1e-4
# (name, in channels, out channels, input side): LeNet-5's convolutions on 32x32 images
CONVS = [("conv1", 1, 6, 32), ("conv2", 6, 16, 14)]
MLP_SHAPE, MLP_HIDDEN, MLP_DROPOUT, N_CLASSES = 64, [256, 128], 0.2, 10
Timed = Callable[[], object]


def verdict(met: bool) -> str:
    return "goal met" if met else "goal not met"


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """torch and NumPy's BLAS on `n` threads each (0: leave both as they are)."""
    if n <= 0:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before)


def blas_threads() -> str:
    return ", ".join(
        f"{Path(i['filepath']).parent.name.split('.')[0]} {i['num_threads']}"
        for i in threadpool_info()
        if i["user_api"] == "blas"
    )


def alternate(pair: dict[str, Timed], rounds: int, reps: int) -> dict[str, list[float]]:
    """Seconds per call of each contender, one entry per round; the order flips every round."""
    times: dict[str, list[float]] = {name: [] for name in pair}
    names = list(pair)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            call = pair[name]
            call()  # warm-up: caches, the other library's spinning threads
            start = time.perf_counter()
            for _ in range(reps):
                call()
            times[name].append((time.perf_counter() - start) / reps)
    return times


def ratio(times: dict[str, list[float]]) -> float:
    """Median over rounds of numpy / torch."""
    return statistics.median(a / b for a, b in zip(times["numpy"], times["torch"], strict=True))


def ms(values: list[float]) -> float:
    return 1e3 * statistics.median(values)


# ----------------------------------------------------------------------------- claim 1


def digits_config(epochs: int | None) -> dict:
    """digits.yaml's data and train sections with its mlp and lenet, and their NumPy twins."""
    example = yaml.safe_load(DIGITS_YAML.read_text())
    entries = {entry["name"]: entry for entry in example["models"]}
    mlp_entry, lenet = entries["mlp"], entries["lenet"]
    train = dict(example["train"])
    if epochs is not None:
        train["epochs"] = epochs
    return {
        "name": "scratch-bench",
        "seed": example.get("seed", 0),
        "device": "cpu",
        "data": example["data"],
        "models": [
            mlp_entry,
            {**mlp_entry, "name": "scratch_mlp", "type": "scratch_mlp"},
            lenet,
            {"name": "scratch_lenet", "type": "scratch_cnn", "image_size": lenet["image_size"]},
        ],
        "train": train,
        "evaluate": {"metrics": ["accuracy"]},
    }


def claim_accuracy(epochs: int | None, run_threads: int) -> None:
    config = digits_config(epochs)
    with tempfile.TemporaryDirectory() as tmp, threads(run_threads):
        print(
            f"claim 1: ladder run of {', '.join(m['name'] for m in config['models'])} on digits, "
            f"{config['train']['epochs']} epochs, torch threads {torch.get_num_threads()}, "
            f"BLAS threads {blas_threads()}"
        )
        folder = Path(tmp)
        (folder / "config.yaml").write_text(yaml.safe_dump(config))
        run(folder / "config.yaml", out=folder / "run")
        models = folder / "run" / "models"
        metrics = {
            m["name"]: json.loads((models / m["name"] / "metrics.json").read_text())
            for m in config["models"]
        }
        epochs_s = {
            m["name"]: pd.read_csv(models / m["name"] / "history.csv")["seconds"]
            for m in config["models"]
        }
    print(
        f"\n{'model':<14} {'type':<12} {'accuracy':>9} {'train_seconds':>14} {'epochs':>7} "
        f"{'median epoch s':>15}"
    )
    for m in config["models"]:
        got, seconds = metrics[m["name"]], epochs_s[m["name"]]
        print(
            f"{m['name']:<14} {m['type']:<12} {got['accuracy']:>9.4f} "
            f"{got['train_seconds']:>14.2f} {len(seconds):>7} {seconds.median():>15.3f}"
        )
    for name, twin, goal in (("scratch_lenet", "lenet", True), ("scratch_mlp", "mlp", False)):
        ours, theirs = metrics[name], metrics[twin]
        diff = 100 * (ours["accuracy"] - theirs["accuracy"])
        slower = ours["train_seconds"] / theirs["train_seconds"]
        per_epoch = epochs_s[name].median() / epochs_s[twin].median()
        line = (
            f"{name} - {twin}: {diff:+.2f} points; train time {slower:.1f}x "
            f"({ours['train_seconds']:.1f}s vs {theirs['train_seconds']:.1f}s), "
            f"median epoch {per_epoch:.1f}x"
        )
        if goal:
            line += f"; goal within {GOAL_ACCURACY} point: {verdict(abs(diff) <= GOAL_ACCURACY)}"
        print(line)


# ----------------------------------------------------------------------------- claim 2


def conv_contenders(c_in: int, c_out: int, side: int) -> dict[str, dict[str, Timed]]:
    """Per pass, the NumPy and torch calls on the same float32 input, weights and gradient."""
    rng = np.random.default_rng(0)
    layer = Conv2d(c_in, c_out, 5, rng=rng)
    layer.params = {k: v.astype(np.float32) for k, v in layer.params.items()}
    x = rng.normal(size=(BATCH, c_in, side, side)).astype(np.float32)
    g = rng.normal(size=layer.forward(x).shape).astype(np.float32)
    weight = torch.from_numpy(layer.params["weight"].copy()).requires_grad_()
    bias = torch.from_numpy(layer.params["bias"].copy()).requires_grad_()
    x_t, x_grad, g_t = (
        torch.from_numpy(x),
        torch.from_numpy(x).requires_grad_(),
        torch.from_numpy(g),
    )
    # the NumPy layer must give torch's answer, or the timings compare different work
    y_np = layer.forward(x, training=True)
    dx_np = layer.backward(g)
    y_t = F.conv2d(x_grad, weight, bias)
    y_t.backward(g_t)
    assert np.allclose(y_np, y_t.detach().numpy(), atol=1e-4), "forward differs from torch"
    assert np.allclose(dx_np, x_grad.grad.numpy(), atol=1e-3), "input gradient differs"
    assert np.allclose(layer.grads["weight"], weight.grad.numpy(), rtol=1e-3, atol=1e-2)
    assert layer.params["weight"].dtype == y_np.dtype == dx_np.dtype == np.float32

    def numpy_forward() -> object:
        return layer.forward(x, training=True)

    def numpy_both() -> object:
        layer.forward(x, training=True)
        return layer.backward(g)

    def torch_forward() -> object:
        with torch.no_grad():
            return F.conv2d(x_t, weight, bias)

    def torch_both(inputs: torch.Tensor) -> Timed:
        def call() -> object:
            inputs.grad = weight.grad = bias.grad = None
            F.conv2d(inputs, weight, bias).backward(g_t)
            return weight.grad

        return call

    return {
        "forward": {"numpy": numpy_forward, "torch": torch_forward},
        "forward+backward": {"numpy": numpy_both, "torch": torch_both(x_grad)},
        "fwd+bwd, torch no dx": {"numpy": numpy_both, "torch": torch_both(x_t)},
    }


def claim_conv(thread_counts: list[int], rounds: int, reps: int) -> None:
    print(
        f"\nclaim 2: Conv2d (NumPy im2col) vs F.conv2d, float32, batch {BATCH}, "
        f"{rounds} rounds x {reps} calls"
    )
    print(
        f"{'threads':>7} {'conv':<6} {'pass':<21} {'numpy ms':>9} {'torch ms':>9} "
        f"{'numpy/torch':>12}  goal <= {GOAL_CONV:g}x"
    )
    worst: dict[int, float] = {}
    for n in thread_counts:
        with threads(n):
            for name, c_in, c_out, side in CONVS:
                for what, pair in conv_contenders(c_in, c_out, side).items():
                    times = alternate(pair, rounds, reps)
                    r = ratio(times)
                    in_goal = not what.startswith("fwd+bwd, torch no dx")
                    if in_goal:
                        worst[n] = max(worst.get(n, 0.0), r)
                    mark = ("met" if r <= GOAL_CONV else "not met") if in_goal else "(info)"
                    print(
                        f"{n:>7} {name:<6} {what:<21} {ms(times['numpy']):>9.3f} "
                        f"{ms(times['torch']):>9.3f} {r:>12.2f}  {mark}"
                    )
    for n, r in worst.items():
        print(
            f"conv, {n} thread(s): worst numpy/torch {r:.2f} over both convolutions and passes "
            f"(goal <= {GOAL_CONV:g}x): {verdict(r <= GOAL_CONV)}"
        )
    best = min(worst, key=worst.__getitem__)
    print(f"conv: best thread count {best} (worst ratio {worst[best]:.2f})")


# ----------------------------------------------------------------------------- claim 3


def mlp_pair(seed: int = 0) -> tuple[torch.nn.Module, object]:
    """The `mlp` rung's module and the NumPy MLP, with the same float32 weights."""
    spec = get_spec("mlp")
    torch.manual_seed(seed)
    config = spec.config_cls(hidden=MLP_HIDDEN, dropout=MLP_DROPOUT)
    module = spec.build(config, (MLP_SHAPE,), N_CLASSES)
    network = mlp(
        MLP_SHAPE, MLP_HIDDEN, N_CLASSES, "relu", MLP_DROPOUT, np.random.default_rng(seed)
    )
    slots = [(layer, key) for layer in network.parameter_layers() for key in layer.params]
    weights = list(module.parameters())
    if len(slots) != len(weights):
        raise SystemExit(f"the NumPy MLP has {len(slots)} parameters, the mlp rung {len(weights)}")
    for (layer, key), weight in zip(slots, weights, strict=True):
        layer.params[key] = weight.detach().numpy().copy()  # float32, as the rung binds them
    return module, network


def step_contenders(seed: int = 0) -> dict[str, Timed]:
    rng = np.random.default_rng(seed)
    x = rng.random((BATCH, MLP_SHAPE), dtype=np.float32)
    y = rng.integers(0, N_CLASSES, BATCH)
    module, network = mlp_pair(seed)
    network.reseed(seed)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    # the same logits from the same weights (dropout off), in float32
    module.eval()
    with torch.no_grad():
        expected = module(x_t).numpy()
    got = network.forward(x)
    assert got.dtype == np.float32 and np.allclose(got, expected, atol=1e-5), "MLPs differ"
    module.train()
    torch_opt = torch.optim.AdamW(module.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    params = [array for _, array in network.parameters()]
    numpy_opt = AdamW(params, lr=LR, weight_decay=WEIGHT_DECAY)

    def numpy_step() -> object:
        logits = network.forward(x, training=True)
        loss, dlogits = softmax_cross_entropy(logits, y)
        network.backward(dlogits)
        numpy_opt.step([grad for _, grad in network.gradients()])
        return loss

    def torch_step() -> object:
        torch_opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(module(x_t), y_t)
        loss.backward()
        torch_opt.step()
        return loss

    numpy_step()
    assert all(p.dtype == np.float32 for p in params), "a NumPy parameter left float32"
    return {"numpy": numpy_step, "torch": torch_step}


def digits_images() -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits()
    return (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)


def rung_samples_per_second(model_type: str, epochs: int) -> Timed:
    X, y = digits_images()
    spec = get_spec(model_type)
    config = TrainConfig(
        epochs=epochs,
        batch_size=BATCH,
        early_stopping=None,
        optimizer={"name": "adamw", "lr": LR, "weight_decay": WEIGHT_DECAY},
    )

    def fit() -> float:
        torch.manual_seed(0)
        module = spec.build(
            spec.config_cls(hidden=MLP_HIDDEN, dropout=MLP_DROPOUT), X.shape[1:], N_CLASSES
        )
        trainer = Trainer(module, config, seed=0)
        start = time.perf_counter()
        trainer.fit(X, y)
        return epochs * len(X) / (time.perf_counter() - start)

    return fit


def whole_rung(n: int, rounds: int, epochs: int, label: str) -> float:
    """Print and return the median over rounds of mlp / scratch_mlp samples/s of Trainer.fit
    (numpy / torch time), the two alternating."""
    fits = {
        "numpy": rung_samples_per_second("scratch_mlp", epochs),
        "torch": rung_samples_per_second("mlp", epochs),
    }
    fits["numpy"](), fits["torch"]()  # warm-up
    speed: dict[str, list[float]] = {"numpy": [], "torch": []}
    for r in range(rounds):
        for name in ("numpy", "torch") if r % 2 == 0 else ("torch", "numpy"):
            speed[name].append(fits[name]())
    slower = statistics.median(t / s for s, t in zip(speed["numpy"], speed["torch"], strict=True))
    print(
        f"{n:>7} {label:<24} {statistics.median(speed['numpy']):>12,.0f} "
        f"{statistics.median(speed['torch']):>12,.0f} {slower:>12.2f}  (info)"
    )
    return slower


def claim_mlp(thread_counts: list[int], rounds: int, reps: int, rung_epochs: int) -> None:
    print(
        f"\nclaim 3: one training step, MLP {MLP_SHAPE} -> {MLP_HIDDEN} -> {N_CLASSES}, "
        f"dropout {MLP_DROPOUT}, batch {BATCH}, AdamW; {rounds} rounds x {reps} steps; "
        f"whole rung: Trainer.fit, {rung_epochs} epoch(s) of {len(digits_images()[0])} digits"
    )
    print(
        f"{'threads':>7} {'what':<24} {'numpy':>12} {'torch':>12} {'numpy/torch':>12}  "
        f"goal <= {GOAL_MLP:g}x"
    )
    steps: dict[int, float] = {}
    rungs: dict[int, float] = {}
    rung_rounds = max(1, (rounds + 2) // 3)
    for n in thread_counts:
        with threads(n):
            times = alternate(step_contenders(), rounds, reps)
            steps[n] = ratio(times)
            print(
                f"{n:>7} {'training step (ms)':<24} {ms(times['numpy']):>12.3f} "
                f"{ms(times['torch']):>12.3f} {steps[n]:>12.2f}  "
                f"{'met' if steps[n] <= GOAL_MLP else 'not met'}"
            )
            rungs[n] = whole_rung(n, rung_rounds, rung_epochs, "whole rung (samples/s)")
    for n in thread_counts:
        print(
            f"MLP step, {n} thread(s): numpy/torch {steps[n]:.2f} (goal <= {GOAL_MLP:g}x): "
            f"{verdict(steps[n] <= GOAL_MLP)}; whole rung {rungs[n]:.2f}x"
        )
    best = min(steps, key=steps.__getitem__)
    print(f"MLP step: best thread count {best} (ratio {steps[best]:.2f})")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", default="1,2,3", help="which claims to check, e.g. 2,3")
    parser.add_argument("--rounds", type=int, default=25, help="alternating rounds per timing")
    parser.add_argument("--reps", type=int, default=10, help="calls per contender per round")
    parser.add_argument(
        "--threads", default="1,2", help="thread counts for claims 2 and 3 (torch and BLAS)"
    )
    parser.add_argument(
        "--rung-epochs", type=int, default=3, help="epochs of each whole-rung fit (claim 3)"
    )
    parser.add_argument(
        "--run-threads",
        type=int,
        default=0,
        help="threads for claim 1's run (0: as `ladder run` leaves torch and BLAS)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 3 rounds, 2 epochs, 1 rung epoch"
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # in order with ladder's progress (stderr)
    claims = {int(c) for c in args.claims.split(",") if c.strip()}
    if not claims <= {1, 2, 3}:
        parser.error(f"--claims takes 1, 2 and 3, got {args.claims}")
    thread_counts = [int(t) for t in args.threads.split(",") if t.strip()]
    rounds, reps = (3, 3) if args.quick else (max(1, args.rounds), max(1, args.reps))
    rung_epochs = 1 if args.quick else max(1, args.rung_epochs)
    print(
        f"torch {torch.__version__} (default threads {torch.get_num_threads()}), "
        f"NumPy {np.__version__} (BLAS: {blas_threads()})"
    )
    if 1 in claims:
        claim_accuracy(2 if args.quick else None, args.run_threads)
    if 2 in claims:
        claim_conv(thread_counts, rounds, reps)
    if 3 in claims:
        claim_mlp(thread_counts, rounds, 2 * reps, rung_epochs)


if __name__ == "__main__":
    main()

"""Claims: ONNX Runtime (fp32) predicts a single example at least 1.5x faster than PyTorch eager
(fp32) for LeNet-5 and the MLP; and MiniLM quantized to int8 (ONNX Runtime) against fp32 PyTorch
eager: batch-1 latency and batch-64 throughput (goals 2x each) and size (goal <= 30%).

Both models are trained by `ladder train examples/digits.yaml --model lenet|mlp` (3 epochs:
speed does not depend on accuracy) into a temporary folder; their artifacts hold the verified
model.onnx. Each contender predicts one preprocessed example (batch 1) and, separately, a batch
of 64: the torch module in eval mode under `torch.no_grad()` vs an ONNX Runtime session on the
CPU provider. Threads: torch's default and ONNX Runtime's default. The contenders alternate
over `--rounds` rounds of `--calls` calls; the script prints the median latency of each and the
ratio torch / onnxruntime (speed-up), also as the median of the rounds' own ratios.

MiniLM: with `--run runs/rt_polarity` (after `ladder run examples/rt_polarity.yaml` and
`ladder compress runs/rt_polarity`), the fine-tuned `minilm` artifact (torch weights) and its
`minilm+int8` variant predict rt_polarity sentences: one sentence at a time, and batches of 64
(each trimmed to its longest sentence); the accuracy of both is in the run's leaderboard.

Run: .venv/bin/python benchmarks/compress.py [--rounds 7] [--calls 300] [--run runs/rt_polarity]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ladder.export.artifact import load, neural_module, read_manifest
from ladder.export.onnx import ONNX_MODEL, OnnxPredictor
from ladder.runner.ladder import train

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"
GOAL = 1.5


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--run", type=Path, help="a run folder with minilm and minilm+int8")
    args = parser.parse_args()
    from sklearn.datasets import load_digits

    images = (load_digits().images[:64, None] / 16.0).astype(np.float32)  # (64, 1, 8, 8)
    print(f"torch threads {torch.get_num_threads()}, rounds {args.rounds} x {args.calls} calls")
    print(
        f"{'model':8s} {'batch':>5s} {'torch ms':>9s} {'onnx ms':>9s} {'speed-up':>9s} "
        f"{'per round':>9s}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("lenet", "mlp"):
            result = train(CONFIG, name, out=tmp, overrides={"train.epochs": 3})
            folder = result.artifact
            manifest = read_manifest(folder)
            features = load(folder).preprocessor.transform(images)
            module = neural_module(folder / manifest["model_file"], manifest)
            session = OnnxPredictor(folder / ONNX_MODEL, "neural")
            for batch in (1, 64):
                x = features[:batch]
                x_torch = torch.from_numpy(x)

                def eager(x_torch: torch.Tensor = x_torch, module=module) -> object:
                    with torch.no_grad():
                        return torch.softmax(module(x_torch), dim=1).numpy()

                def onnx(x: np.ndarray = x, session=session) -> object:
                    return session(x)

                np.testing.assert_allclose(eager(), onnx(), atol=1e-4)
                times: dict[str, list[float]] = {"torch": [], "onnx": []}
                for r in range(args.rounds):
                    pairs = [("torch", eager), ("onnx", onnx)]
                    for label, fn in pairs if r % 2 == 0 else pairs[::-1]:
                        fn()  # warm
                        times[label].append(seconds_per_call(fn, args.calls))
                t, o = statistics.median(times["torch"]), statistics.median(times["onnx"])
                per_round = statistics.median(
                    a / b for a, b in zip(times["torch"], times["onnx"], strict=True)
                )
                print(
                    f"{name:8s} {batch:5d} {t * 1e3:9.3f} {o * 1e3:9.3f} {t / o:8.2f}x "
                    f"{per_round:8.2f}x"
                )
    print(f"goal: batch 1 speed-up >= {GOAL}x")
    if args.run is not None:
        minilm(args.run, args.rounds)


def minilm(run_dir: Path, rounds: int) -> None:
    """fp32 PyTorch eager vs int8 ONNX Runtime for the fine-tuned MiniLM of a run."""
    original, variant = run_dir / "models/minilm/artifact", run_dir / "models/minilm+int8/artifact"
    manifest = read_manifest(original)
    module = neural_module(original / manifest["model_file"], manifest)
    int8 = OnnxPredictor(variant / ONNX_MODEL, "neural", manifest["pad_id"])
    data = Path(__file__).resolve().parents[2] / "shared/data/rt_polarity/rt-polarity.pos"
    texts = data.read_text(encoding="utf-8").split("\n")[:64]
    ids = load(original).preprocessor.transform(texts)
    one = ids[:1, : int((ids[0] != manifest["pad_id"]).sum())]

    def eager(x: np.ndarray) -> object:
        with torch.no_grad():
            return torch.softmax(module(torch.from_numpy(x)), dim=1).numpy()

    print(f"\nMiniLM (fp32 torch eager vs int8 onnxruntime), {rounds} rounds")
    for label, x, calls in (("batch 1 latency", one, 50), ("batch 64 throughput", ids, 5)):
        times: dict[str, list[float]] = {"torch": [], "int8": []}
        for r in range(rounds):
            pairs = [("torch", lambda x=x: eager(x)), ("int8", lambda x=x: int8(x))]
            for name, fn in pairs if r % 2 == 0 else pairs[::-1]:
                fn()
                times[name].append(seconds_per_call(fn, calls))
        t, q = statistics.median(times["torch"]), statistics.median(times["int8"])
        unit = (
            f"{t * 1e3:.2f} ms vs {q * 1e3:.2f} ms"
            if len(x) == 1
            else f"{len(x) / t:.1f} vs {len(x) / q:.1f} samples/s"
        )
        print(f"{label:20s} {unit}: {t / q:.2f}x (goal 2x)")
    sizes = [(f / ONNX_MODEL).stat().st_size for f in (original, variant)]
    weights = (original / manifest["model_file"]).stat().st_size
    print(
        f"size: int8 model.onnx {sizes[1] / 1e6:.1f} MB = {sizes[1] / weights:.0%} of the fp32 "
        f"weights ({weights / 1e6:.1f} MB; goal <= 30%)"
    )


if __name__ == "__main__":
    main()

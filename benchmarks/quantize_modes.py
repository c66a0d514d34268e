"""Figures: the two int8 modes against their fp32 originals on a finished digits run, side by
side: LeNet-5 static int8 (ONNX Runtime, QDQ, calibrated on 256 training rows) against LeNet-5
fp32 on ONNX Runtime, and the MLP's torch dynamic int8 against the MLP fp32 on torch.

For each pair: test accuracy and its delta, the model file's size, and the latency of one
preprocessed example (batch 1) and of a batch of 64 test rows, timed through the predictors
`ladder.load` gives (what `ladder serve` runs). The contenders of a pair alternate over
`--rounds` rounds of `--calls` calls; the script prints median latencies and the speed-up
(fp32 / int8), also as the median of the rounds' own ratios. Threads: `--threads` (default 1:
steadier on a shared machine) for torch and for each ONNX Runtime session.

The run folder is never modified: the script works on a temporary copy, gives its lenet
artifact a model.onnx (`ladder export`) when it has none, and writes the variants there.

Run: .venv/bin/python benchmarks/quantize_modes.py [--run runs/digits] [--rounds 7] [--calls 200]
     [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from _digits import ensure_digits_run

from ladder.compress.quantize import quantize
from ladder.compress.variant import CompressContext
from ladder.config import QuantizeConfig, load_run_config
from ladder.export.artifact import LoadedModel, load, read_manifest
from ladder.export.onnx import ONNX_MODEL
from ladder.export.reexport import export_artifact
from ladder.runner.prepare import prepare_data

PAIRS = [  # (original, its backend, the quantize method)
    ("lenet", "onnxruntime", QuantizeConfig(method="quantize", mode="static")),
    ("mlp", "torch", QuantizeConfig(method="quantize", backend="torch")),
]


def seconds_per_call(fn: Callable[[], object], calls: int) -> float:
    """Mean seconds of `calls` calls of `fn`."""
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def accuracy(model: LoadedModel, raw: object, y: np.ndarray) -> float:
    """Test accuracy of a loaded artifact on raw test inputs."""
    return float((model.predict_proba_raw(raw).argmax(axis=1) == y).mean())


def model_size(artifact: Path) -> int:
    """Bytes of the artifact's model file (model.onnx or the weights)."""
    return (artifact / read_manifest(artifact)["model_file"]).stat().st_size


def with_threads(model: LoadedModel, artifact: Path, threads: int) -> LoadedModel:
    """The loaded model, its ONNX Runtime session (if any) remade with `threads` threads."""
    if model.backend == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        model.predict_features.session = ort.InferenceSession(  # type: ignore[attr-defined]
            str(artifact / ONNX_MODEL), options, providers=["CPUExecutionProvider"]
        )
    return model


def prepared_copy(run: Path, folder: Path) -> CompressContext:
    """A copy of the run in `folder`, its data loaded as the run's models saw it."""
    copy = Path(shutil.copytree(run, folder / run.name))
    config = load_run_config(copy)
    data = prepare_data(config)
    if json.loads((copy / "data.json").read_text())["sha256"] != data.info["sha256"]:
        raise SystemExit(f"{run}: the data changed since the run (sha256 differs)")
    entries = {name: config.model(name) for name, _, _ in PAIRS}
    context = CompressContext(config, copy, data, entries)
    lenet = context.artifact("lenet")
    if ONNX_MODEL not in read_manifest(lenet)["files"]:
        export_artifact(lenet)  # runs made before ONNX export have none
    return context


def time_pair(
    fp32: LoadedModel, int8: LoadedModel, x: np.ndarray, rounds: int, calls: int
) -> tuple[float, float, float]:
    """Median ms per call of fp32 and int8 on features `x`, and the median per-round speed-up."""
    fp32.predict_features(x), int8.predict_features(x)  # warm-up
    a, b = [], []
    for _ in range(rounds):
        a.append(seconds_per_call(lambda: fp32.predict_features(x), calls) * 1e3)
        b.append(seconds_per_call(lambda: int8.predict_features(x), calls) * 1e3)
    ratios = [s / q for s, q in zip(a, b, strict=True)]
    return statistics.median(a), statistics.median(b), statistics.median(ratios)


def main() -> None:
    """Quantize lenet (static) and mlp (torch) on a copy of --run; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=Path("runs/digits"), help="a digits run")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    import onnxruntime as ort

    ensure_digits_run(args.run)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s)")
    print(f"rounds {args.rounds} x {args.calls} calls; speed-up = fp32 ms / int8 ms\n")
    with tempfile.TemporaryDirectory() as tmp:
        context = prepared_copy(args.run, Path(tmp))
        test = context.data.splits.test
        header = f"{'model':22s} {'backend':11s} {'accuracy':>8s} {'size KB':>8s}"
        print(f"{header} {'batch 1 ms':>10s} {'batch 64 ms':>11s}")
        for original, backend, method in PAIRS:
            variant = method.variant_name(original)
            quantize(method, context, original)
            models = [
                with_threads(
                    load(context.artifact(name), kind), context.artifact(name), args.threads
                )
                for name, kind in ((original, backend), (variant, None))
            ]
            features = models[0].preprocessor.transform(test.X)
            one = time_pair(*models, features[:1], args.rounds, args.calls)
            batch = time_pair(*models, features[:64], args.rounds, max(1, args.calls // 8))
            scores = [accuracy(m, test.X, test.y) for m in models]
            sizes = [model_size(context.artifact(n)) for n in (original, variant)]
            for i, (name, model) in enumerate(zip((original, variant), models, strict=True)):
                print(
                    f"{name:22s} {model.backend:11s} {scores[i]:8.4f} {sizes[i] / 1024:8.1f} "
                    f"{one[i]:10.3f} {batch[i]:11.3f}"
                )
            print(
                f"  -> accuracy delta {100 * (scores[1] - scores[0]):+.2f} points, size "
                f"x{sizes[1] / sizes[0]:.2f}, speed-up batch 1 x{one[0] / one[1]:.2f} "
                f"(per round x{one[2]:.2f}), batch 64 x{batch[0] / batch[1]:.2f} "
                f"(per round x{batch[2]:.2f})\n"
            )


if __name__ == "__main__":
    main()

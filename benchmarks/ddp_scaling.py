"""Figure: training samples/s of one process against `--nproc 2` DDP workers on this machine.

Runs the real command, `ladder train examples/digits.yaml --model lenet`, with a fixed number of
epochs and no early stopping: once as one process (all cores to torch's threads) and once as
two torchrun workers (one thread each), alternated `--rounds` times. Samples/s come from the
run's history.csv (training rows / epoch seconds, first epoch left out as warm-up).

Run: .venv/bin/python benchmarks/ddp_scaling.py [--rounds 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"


def samples_per_second(nproc: int | None, epochs: int, out: Path) -> float:
    """Train once and return the median training samples/s after the first epoch."""
    command = [sys.executable, "-m", "ladder.cli", "train", str(CONFIG), "--model", "lenet"]
    command += ["--out", str(out), "--set", f"train.epochs={epochs}"]
    command += ["--set", "train.early_stopping=null"]
    if nproc is not None:
        command += ["--nproc", str(nproc)]
    subprocess.run(command, check=True, capture_output=True)
    rows = json.loads((out / "data.json").read_text())["rows"]["train"]
    with (out / "models/lenet/history.csv").open() as fh:
        seconds = [float(row["seconds"]) for row in csv.DictReader(fh)][1:]
    return rows / statistics.median(seconds)


def main() -> None:
    """Alternate one process and two DDP workers; print medians and the speed-up."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    single, ddp = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            single.append(samples_per_second(None, args.epochs, Path(tmp) / f"one{i}"))
            ddp.append(samples_per_second(2, args.epochs, Path(tmp) / f"two{i}"))
            print(f"round {i + 1}: 1 process {single[-1]:,.0f}  2 workers {ddp[-1]:,.0f} samples/s")
    one, two = statistics.median(single), statistics.median(ddp)
    print(f"LeNet-5 on digits (1,257 training images), CPU: 1 process {one:,.0f} samples/s")
    print(f"--nproc 2: {two:,.0f} samples/s, ratio {two / one:.2f} (a figure, not a goal)")


if __name__ == "__main__":
    main()

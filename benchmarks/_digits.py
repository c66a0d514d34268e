"""Shared by the compression benchmarks: a digits run with lenet and mlp trained by the
current examples/digits.yaml (not a benchmark itself)."""

from __future__ import annotations

from pathlib import Path

from ladder.config import load_config, load_run_config
from ladder.runner.cache import cached_status

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "digits.yaml"
MODELS = ("lenet", "mlp")


def ensure_digits_run(run_dir: Path) -> None:
    """Train lenet and mlp of examples/digits.yaml into `run_dir` unless they are there,
    trained with the current config."""
    from ladder.runner.ladder import run

    config = load_config(CONFIG)
    if (run_dir / "config.yaml").is_file():
        config = load_run_config(run_dir)
    stale = [m for m in MODELS if cached_status(run_dir, config, config.model(m)) != "cached"]
    if stale:
        print(f"training {', '.join(stale)} of {CONFIG.name} into {run_dir}")
        run(CONFIG, out=run_dir, only=list(MODELS))

"""`ladder compress RUN_DIR`: the config's `compress:` section applied to a finished run.

Each method makes variant artifacts (`<model>+int8`) that are evaluated on the run's own test
split and added to its leaderboard and report beside the originals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ladder.config import load_run_config
from ladder.errors import ConfigError, LadderError
from ladder.io import atomic_write_text


def compress_run(run_dir: str | Path, overrides: list[str] | None = None) -> Any:
    """Make, evaluate and rank every variant the run's `compress:` section asks for; returns
    a `ladder.ranking.RunResult` whose leaderboard holds originals and variants."""
    from ladder.cache import cached_status
    from ladder.compress.quantize import quantize_artifact
    from ladder.export.artifact import load
    from ladder.pipeline import evaluate_predictions, prepare_data
    from ladder.ranking import rank_run

    run_dir = Path(run_dir)
    config = load_run_config(run_dir, overrides)
    if not config.compress:
        raise ConfigError([f"{run_dir}: the config has no compress: section"])
    data = prepare_data(config)
    saved = json.loads((run_dir / "data.json").read_text()).get("sha256")
    if saved != data.info["sha256"]:
        raise LadderError(f"{run_dir}: the data changed since the run (sha256 differs)")
    entries = {e["name"]: config.model(e["name"]) for e in config.models}
    variants: dict[str, tuple[str, str]] = {}  # variant -> (original, type)
    for i, method in enumerate(config.compress):
        names = method.models or [n for n, e in entries.items() if _is_neural(e.type)]
        unknown = [n for n in names if n not in entries]
        if unknown:
            raise ConfigError([f"compress[{i}].models: no model named {', '.join(unknown)}"])
        for name in names:
            original = run_dir / "models" / name / "artifact"
            if not original.is_dir():
                raise LadderError(f"{name}: no artifact in {run_dir}; train it with ladder run")
            variant = f"{name}+int8"
            quantize_artifact(original, run_dir / "models" / variant / "artifact", name)
            variants[variant] = (name, entries[name].type)
    test = data.splits.test
    for variant, (name, _) in variants.items():
        model_dir = run_dir / "models" / variant
        model = load(model_dir / "artifact")
        metrics = evaluate_predictions(
            test.y, model.predict_proba_raw(test.X), data.labels, model_dir
        )
        original = json.loads((run_dir / "models" / name / "metrics.json").read_text())
        metrics.update(
            train_seconds=original.get("train_seconds"),
            params=original.get("params"),
            variant_of=name,
            accuracy_delta=metrics["accuracy"] - original["accuracy"],
        )
        atomic_write_text(model_dir / "metrics.json", json.dumps(metrics, indent=2))
    status = {name: cached_status(run_dir, config, entry) for name, entry in entries.items()}
    return rank_run(config, entries, status, data, run_dir)


def _is_neural(model_type: str) -> bool:
    from ladder.registry import get_spec

    return get_spec(model_type).family == "neural"


__all__ = ["compress_run"]

"""Ranking a run: the leaderboard of its models and their compressed variants, written with
the report into the run folder."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ladder.config import Config, ModelEntry
from ladder.evaluate.compare import leaderboard_markdown
from ladder.io import atomic_write_text
from ladder.report import render_report
from ladder.runner.leaderboard import leaderboard_rows
from ladder.tasks import get_task
from ladder.tuning import tuned_name


@dataclass
class RunResult:
    """What `run` produced: the leaderboard, which models failed, and where things are."""

    run_dir: Path
    leaderboard: Any  # pandas DataFrame, columns as ladder.evaluate.compare.LEADERBOARD_COLUMNS
    status: dict[str, str]
    report: Path | None

    @property
    def failed(self) -> dict[str, str]:
        """Models whose training failed, with the reason."""
        return {k: v for k, v in self.status.items() if v.startswith("failed")}


def rank_run(
    config: Config,
    entries: dict[str, ModelEntry],
    status: dict[str, str],
    data: Any,
    run_dir: Path,
) -> RunResult:
    """Rank the run's models and their compressed variants; write the leaderboard and report."""
    return write_leaderboard(run_dir, leaderboard(config, entries, status, data, run_dir), status)


def write_leaderboard(run_dir: Path, board: Any, status: dict[str, str]) -> RunResult:
    """leaderboard.csv, leaderboard.md and report.html of a run folder."""
    atomic_write_text(run_dir / "leaderboard.csv", board.to_csv(index=False))
    atomic_write_text(run_dir / "leaderboard.md", leaderboard_markdown(board))
    return RunResult(run_dir, board, status, render_report(run_dir))


def leaderboard(
    config: Config,
    entries: dict[str, ModelEntry],
    status: dict[str, str],
    data: Any,
    run_dir: Path,
) -> Any:
    models, status = [], dict(status)
    for name, entry in entries.items():
        if status[name] != "absent":
            models.append((name, entry.type))
        for variant, variant_type in variants_of(run_dir, name):
            models.append((variant, variant_type))
            status[variant] = "ok"
    listed = {name for name, _ in models}
    models += [(n, "") for n, s in status.items() if n not in listed and s.startswith("failed")]
    return leaderboard_rows(
        run_dir,
        models,
        status,
        data.test_inputs(),
        config.evaluate.bootstrap,
        config.seed,
        primary=config.evaluate.primary,
        task=get_task(config.data.task, config.evaluate.primary),
    )


def variants_of(run_dir: Path, name: str) -> list[tuple[str, str]]:
    """The evaluated compressed variants of model `name` in the run folder (a distilled
    student is a variant of its teacher), as (variant, model type) pairs."""
    found = []
    for metrics_file in sorted((run_dir / "models").glob("*/metrics.json")):
        metrics = json.loads(metrics_file.read_text())
        if metrics.get("variant_of") == name:
            found.append((metrics_file.parent.name, metrics.get("model_type", "")))
    return found


def remove_variants(run_dir: Path, name: str) -> None:
    """Delete the compressed variants of model `name` (made from weights now replaced); its
    tuned model, trained from scratch, stays."""
    for variant, _ in variants_of(run_dir, name):
        if variant == tuned_name(name):
            continue
        shutil.rmtree(run_dir / "models" / variant, ignore_errors=True)

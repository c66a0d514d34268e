"""Tasks: everything that differs between kinds of problem lives in one module per task
(`classification`, `regression`, `generation`): the network's output size and loss, the
metrics and which one ranks the leaderboard, the paired test against the best model, the
plots, and how predictions are written. Rows-and-targets tasks share one rung
(`ladder.runner.rung`); generation learns from a token stream and has its own
(`ladder.runner.lm_rung`), feeding the same leaderboard, report, compression and serving."""

from __future__ import annotations

from ladder.data.target import detect_task
from ladder.tasks.base import Task
from ladder.tasks.classification import CLASSIFICATION
from ladder.tasks.generation import GENERATION
from ladder.tasks.regression import REGRESSION

TASKS: dict[str, Task] = {
    CLASSIFICATION.name: CLASSIFICATION,
    REGRESSION.name: REGRESSION,
    GENERATION.name: GENERATION,
}


def get_task(name: str) -> Task:
    """The task called `name` (classification, regression or generation)."""
    return TASKS[name]


__all__ = ["TASKS", "Task", "detect_task", "get_task"]

"""Tasks: everything that differs between kinds of problem lives in one module per task
(`classification`, `regression`, `generation`, `seq2seq`): the network's output size and loss, the
metrics and which one ranks the leaderboard, the paired test against the best model, the
plots, and how predictions are written. Rows-and-targets tasks share one rung
(`ladder.runner.rung`); generation learns from a token stream and has its own
(`ladder.runner.lm_rung`), and so do pairs of texts (`ladder.runner.s2s_rung`), feeding the
same leaderboard, report, compression and serving."""

from __future__ import annotations

from ladder.data.target import detect_task
from ladder.tasks.base import Task
from ladder.tasks.classification import CLASSIFICATION
from ladder.tasks.generation import GENERATION
from ladder.tasks.regression import REGRESSION
from ladder.tasks.seq2seq import SEQ2SEQ

TASKS: dict[str, Task] = {
    CLASSIFICATION.name: CLASSIFICATION,
    REGRESSION.name: REGRESSION,
    GENERATION.name: GENERATION,
    SEQ2SEQ.name: SEQ2SEQ,
}


def get_task(name: str, primary: str | None = None) -> Task:
    """The task called `name` (classification, regression, generation or seq2seq); a task
    whose interval and paired test depend on the primary metric (seq2seq) gets `primary`."""
    task = TASKS[name]
    with_primary = getattr(task, "with_primary", None)
    return with_primary(primary) if with_primary is not None and primary else task


__all__ = ["TASKS", "Task", "detect_task", "get_task"]

"""What a tracker does: the calls `ladder run`, `ladder train` and `ladder tune` make."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any, Protocol


class Tracker(Protocol):
    """An experiment tracker: `with tracker:` opens a parent run (ended FINISHED, or FAILED
    when the block raises); the log_ methods add to it and never raise."""

    def __enter__(self) -> Tracker: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def log_rung(self, model_dir: Path) -> None:
        """One model folder as a nested run: its parameters, history, test metrics, artifact."""
        ...

    def log_trials(self, model: str, metric: str, trials: list[dict[str, Any]]) -> None:
        """One nested run per tuning trial of `model`, scored on validation `metric`."""
        ...

    def log_report(self, run_dir: Path) -> None:
        """The run's report, leaderboard and tuning folder as artifacts of the parent run."""
        ...

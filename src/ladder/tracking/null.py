"""The tracker used when tracking is off: every call does nothing."""

from __future__ import annotations

from pathlib import Path
from types import TracebackType
from typing import Any


class NullTracker:
    """A Tracker that records nothing (no tracking URI, or the server was unreachable)."""

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def log_rung(self, model_dir: Path) -> None:
        """Nothing."""

    def log_trials(self, model: str, metric: str, trials: list[dict[str, Any]]) -> None:
        """Nothing."""

    def log_report(self, run_dir: Path) -> None:
        """Nothing."""

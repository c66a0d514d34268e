"""User-facing errors: each maps to exit code 2 and one clear line (no traceback)."""

from __future__ import annotations


class LadderError(Exception):
    """A problem with the user's input (config, data, arguments, artifact); exit code 2."""

    exit_code = 2


class ConfigError(LadderError):
    """The config file or an override is invalid; the message lists every problem."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        super().__init__("\n".join(f"{source}: {p}" for p in problems))


class DataError(LadderError):
    """A data file, folder or record cannot be used; the message names it."""


class ArtifactError(LadderError):
    """A saved artifact is missing, incomplete or has been tampered with."""


class TrainingInterrupted(LadderError):
    """Training stopped on SIGTERM or Ctrl-C after writing a checkpoint; `--resume` continues it.

    `stopped` says when and where the checkpoint is; `resume` how to continue (the CLI puts
    the whole command there); `model` names the model entry, where known. The exit code is
    128 + the signal's number: 143 for SIGTERM, 130 for Ctrl-C (SIGINT).
    """

    def __init__(self, stopped: str, signal_number: int = 15) -> None:
        super().__init__(stopped)
        self.stopped, self.resume = stopped, "--resume"
        self.model: str | None = None
        self.exit_code = 128 + signal_number

    def __str__(self) -> str:
        return f"{self.stopped}; continue with {self.resume}"


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

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
    """Training stopped on SIGTERM after writing a checkpoint; `--resume` continues it."""

    exit_code = 143


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__

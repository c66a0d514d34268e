"""What ladder tells the person running it while it works: status lines, progress, warnings.

One verbosity for the whole process, set by the CLI (`--quiet`, `--verbose`); the library's
default is normal. Everything here goes to stderr, so stdout carries only results
(leaderboards, metrics, predictions). On a terminal, long work also draws a rich progress bar;
elsewhere (CI, nohup, docker logs) each event is one plain line, flushed at once.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

QUIET, NORMAL, VERBOSE = 0, 1, 2
_ENV = "LADDER_VERBOSITY"  # carries the level to worker processes (torchrun)
_level: int | None = None  # None: not set in this process


def set_verbosity(level: int) -> None:
    """Set the process's verbosity (QUIET, NORMAL or VERBOSE); below VERBOSE, third-party
    warnings are hidden. Child processes inherit it."""
    global _level
    _level = level
    os.environ[_ENV] = str(level)
    warnings.formatwarning = _one_line
    if level < VERBOSE:
        hide_third_party_warnings()


def verbosity() -> int:
    """The process's verbosity: the level set here, else the one inherited from a parent."""
    if _level is not None:
        return _level
    inherited = os.environ.get(_ENV, "")
    return int(inherited) if inherited in ("0", "1", "2") else NORMAL


@contextmanager
def quieter() -> Iterator[None]:
    """Inside the block, only results and errors are printed (unless --verbose): a tuning
    trial's epochs are not worth a line each."""
    global _level
    saved = _level
    if verbosity() < VERBOSE:
        _level = QUIET
    try:
        yield
    finally:
        _level = saved


_debug = False


def set_debug(on: bool) -> None:
    """`--debug`: print the tracebacks of failures that ladder otherwise reports in one line."""
    global _debug
    _debug = on


def debugging() -> bool:
    """Whether `--debug` was given."""
    return _debug


def interactive() -> bool:
    """Whether progress bars may be drawn: stderr is a terminal and ladder is not quiet."""
    return verbosity() > QUIET and sys.stderr.isatty()


def say(message: str) -> None:
    """One status line on stderr (not when quiet)."""
    if verbosity() > QUIET:
        print(message, file=sys.stderr, flush=True)


def detail(message: str) -> None:
    """One line on stderr with --verbose only."""
    if verbosity() >= VERBOSE:
        print(message, file=sys.stderr, flush=True)


def progress_console() -> Any:
    """A rich Console on stderr for progress bars (call only when `interactive()`)."""
    return Console(stderr=True)


def hide_third_party_warnings() -> None:
    """Python warnings of other libraries (FutureWarning of scikit-learn, ...) and the log
    chatter of transformers stay out of the terminal; ladder's own warnings still show."""
    warnings.filterwarnings("ignore")
    warnings.filterwarnings("default", module=r"ladder(\.|$)")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


class RungProgress:
    """One line per rung on stderr (which model, what happened, how long); none when quiet."""

    def __init__(self, total: int, label: str = "") -> None:
        self.total, self.label = total, f"{label} " if label else ""

    def line(self, index: int, name: str, what: str) -> None:
        say(f"{self.label}{index}/{self.total} {name}: {what}")

    def note(self, text: str) -> None:
        """A free line, e.g. a compressed variant's progress."""
        say(f"{self.label}{text}")


def _one_line(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: Any = None
) -> str:
    """A warning as the CLI shows it: ladder's own as `warning: <message>`, another library's
    with its category and origin, never the source line."""
    if "ladder" in Path(filename).parts:
        return f"warning: {message}\n"
    return f"warning: {category.__name__} ({filename}:{lineno}): {message}\n"

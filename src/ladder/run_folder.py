"""The run folder's ground rules: every name ladder makes a folder of is a plain name, every
path it writes stays inside the run folder, and one process at a time writes there.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import sys
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ladder.console import debugging
from ladder.errors import LadderError
from ladder.io import atomic_write_text

try:
    import fcntl
except ImportError:  # not POSIX (Windows)
    fcntl = None

LOCK_FILE = ".lock"
ERROR_FILE = "error.txt"  # the traceback of a model that failed
_WAIT_POLL_SECONDS = 0.5


def name_problem(name: str) -> str | None:
    """Why `name` cannot name a folder of the run (None when it can): it must be a plain
    name, not empty, `.` or `..`, without `/`, `\\`, control characters or a leading dot."""
    if not name:
        return "expected a plain name, got an empty one"
    if name in (".", ".."):
        return f"expected a plain name, got {name!r}"
    bad = [c for c in ("/", "\\") if c in name]
    if bad:
        return f"expected a plain name without {' or '.join(bad)}, got {name!r}"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return f"expected a plain name without control characters, got {name!r}"
    if name.startswith("."):
        return f"expected a plain name not starting with '.', got {name!r}"
    return None


def model_dir(run_dir: Path, name: str) -> Path:
    """The folder of model (or variant) `name` in the run folder; LadderError if the name is
    not plain or the folder would resolve outside the run's models/ folder (a symlink)."""
    problem = name_problem(name)
    if problem is not None:
        raise LadderError(f"model name: {problem}")
    models = Path(run_dir) / "models"
    folder = models / name
    if folder.resolve().parent != models.resolve():
        raise LadderError(
            f"{folder}: resolves outside {models} (a link?); ladder writes only there"
        )
    return folder


@contextmanager
def locked(run_dir: Path, wait: bool = False) -> Iterator[None]:
    """Hold the run folder's advisory lock (for run, train and compress). Another holder is an
    error naming it, or with `wait`, is waited for. The lock goes with the process."""
    if fcntl is None:  # not POSIX: no advisory locks; run unlocked
        yield
        return
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_FILE
    with path.open("a+") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    raise LadderError(
                        f"{run_dir} is in use by {_holder(path)}; wait for it to finish, "
                        "or pass --wait"
                    ) from None
                time.sleep(_WAIT_POLL_SECONDS)
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(_me()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _me() -> dict[str, object]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "since": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def _holder(path: Path) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        who = json.loads(path.read_text())
        return f"process {who['pid']} on {who['host']} since {who['since']} ({who['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def record_failure(folder: Path, exc: BaseException) -> Path:
    """Keep the traceback of `exc` in `folder/error.txt` (printed with `--debug`); returns the
    file. A model that trains again removes it (`clear_failure`)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ERROR_FILE
    atomic_write_text(path, text)
    if debugging():
        print(text, file=sys.stderr, end="")
    return path


def clear_failure(folder: Path) -> None:
    """Remove the traceback a failed attempt left in `folder`."""
    (folder / ERROR_FILE).unlink(missing_ok=True)

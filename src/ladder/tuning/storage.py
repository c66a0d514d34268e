"""Where a study lives: a journal file in the run folder (the default; an interrupted study
resumes from it) or a database URL shared by many machines (`--storage postgresql://...`)."""

from __future__ import annotations

import socket
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ladder.errors import LadderError
from ladder.urls import redacted

JOURNAL = "journal.log"
DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306}
HEARTBEAT_SECONDS = 30  # a database study marks a trial failed when its process stops beating
TABLE_RACE_TRIES = 4  # tries at creating a new database's tables while another machine does
TABLE_LOCK_KEY = 0x1ADDE5  # the PostgreSQL advisory lock machines take turns on at opening


def storage_url(storage: str | None, tune_dir: Path) -> str:
    """The storage's URL: `storage` itself, or the run folder's journal file."""
    return storage if storage else f"journal:{tune_dir / JOURNAL}"


def check_reachable(url: str, timeout: float = 5.0) -> None:
    """Raise a one-line LadderError naming host and port when a database server does not
    answer (nothing is written before this check)."""
    if url.startswith("journal:") or url.startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise LadderError(f"--storage {redacted(url)}: not a database URL ({exc})") from exc
    backend = parsed.get_backend_name()
    host = parsed.host or "localhost"
    port = parsed.port or DEFAULT_PORTS.get(backend)
    if port is None:
        return
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise LadderError(
            f"--storage: cannot reach the {backend} server at {host}:{port} ({reason})"
        ) from exc


def open_storage(url: str) -> Any:
    """The Optuna storage of `url` (a journal file's folder is created)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if url.startswith("journal:"):
        path = Path(url.removeprefix("journal:"))
        path.parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
    from sqlalchemy.exc import SQLAlchemyError

    attempt = 0
    while True:
        attempt += 1
        try:
            with _one_machine_at_a_time(url), warnings.catch_warnings():
                # heartbeats are "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    heartbeat_interval=HEARTBEAT_SECONDS,
                    grace_period=4 * HEARTBEAT_SECONDS,
                    engine_kwargs={"pool_pre_ping": True},
                )
        except SQLAlchemyError as exc:
            if _lost_table_race(exc) and attempt < TABLE_RACE_TRIES:
                time.sleep(0.5 * attempt)
                continue
            raise LadderError(f"--storage {redacted(url)}: {_reason(exc)}") from exc
        except ImportError as exc:
            raise LadderError(f"--storage {redacted(url)}: {_reason(exc)}") from exc


@contextmanager
def _one_machine_at_a_time(url: str) -> Iterator[None]:
    """On PostgreSQL, hold a session advisory lock while Optuna creates (or finds) its tables,
    so machines opening a new database together take turns instead of racing."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": TABLE_LOCK_KEY})
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": TABLE_LOCK_KEY})
    finally:
        engine.dispose()


def _lost_table_race(exc: BaseException) -> bool:
    """Whether `exc` is what a machine gets when another creates the same new database's
    tables at the same moment (PostgreSQL takes turns under a lock; other databases say
    IntegrityError, or "already exists"); the winner's tables are there on a retry."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, ProgrammingError) and "already exists" in str(exc)


def _reason(exc: BaseException) -> str:
    """The first line of an exception's message (its type when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def close_storage(storage: Any) -> None:
    """Close a database storage's connections (a journal file needs nothing)."""
    import optuna

    if isinstance(storage, optuna.storages.RDBStorage):
        storage.remove_session()
        storage.engine.dispose()

"""The throwaway PostgreSQL server of tests/pg_server.py works, and Optuna's RDB storage works on
it with two worker processes sharing one study, before `ladder tune`'s own tests rely on it."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pg_server
import psycopg2
import pytest
from sqlalchemy.engine import make_url

# One worker: wait until every worker is up (so they really run at once), then 5 trials.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path

    import optuna

    url, study_name, barrier, index, workers = sys.argv[1:6]
    Path(barrier, f"ready-{index}").touch()
    deadline = time.monotonic() + 60
    while len(list(Path(barrier).glob("ready-*"))) < int(workers):
        if time.monotonic() > deadline:
            sys.exit("timed out waiting for the other workers")
        time.sleep(0.02)

    def objective(trial):
        trial.set_user_attr("pid", os.getpid())
        x = trial.suggest_float("x", -10.0, 10.0)
        time.sleep(0.3)  # long enough that a loaded machine still runs both workers at once
        return x * x

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.load_study(study_name=study_name, storage=url).optimize(objective, n_trials=5)
    """
)


def run_workers(url: str, study: str, barrier: Path, count: int) -> None:
    """Run `count` WORKER processes on one study at once; fail with a worker's output."""
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, url, study, str(barrier), str(index), str(count)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(count)
    ]
    for worker in workers:
        output, _ = worker.communicate(timeout=180)
        assert worker.returncode == 0, output


def test_server_stores_rows(postgres_url: str) -> None:
    url = make_url(postgres_url)
    assert (url.drivername, url.host, url.database) == ("postgresql", "127.0.0.1", "ladder_tune")
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("CREATE TABLE rungs (name text PRIMARY KEY, accuracy double precision)")
        cursor.executemany("INSERT INTO rungs VALUES (%s, %s)", [("logreg", 0.93), ("lenet", 0.98)])
    connection.close()
    with psycopg2.connect(postgres_url) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT name, accuracy FROM rungs ORDER BY name")
        assert cursor.fetchall() == [("lenet", 0.98), ("logreg", 0.93)]
        cursor.execute("DROP TABLE rungs")
    connection.close()


@pytest.mark.slow
def test_optuna_study_shared_by_two_processes(postgres_url: str, tmp_path: Path) -> None:
    name = "pg-two-workers"
    storage = optuna.storages.RDBStorage(postgres_url)
    try:
        optuna.create_study(storage=storage, study_name=name, direction="minimize")
        run_workers(postgres_url, name, tmp_path, count=2)
        trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    finally:  # psycopg warns (an error here) about connections left to the garbage collector
        storage.remove_session()
        storage.engine.dispose()

    assert sorted(trial.number for trial in trials) == list(range(10))
    assert {trial.state for trial in trials} == {optuna.trial.TrialState.COMPLETE}
    assert all(trial.value == trial.params["x"] ** 2 for trial in trials)
    by_worker: dict[int, list[optuna.trial.FrozenTrial]] = {}
    for trial in trials:
        by_worker.setdefault(trial.user_attrs["pid"], []).append(trial)
    assert sorted(len(group) for group in by_worker.values()) == [5, 5]
    # the two workers' trials interleave in time: both wrote to the study at once
    first_starts = [min(trial.datetime_start for trial in group) for group in by_worker.values()]
    last_ends = [max(trial.datetime_complete for trial in group) for group in by_worker.values()]
    assert max(first_starts) < min(last_ends)


def test_server_is_stopped_and_removed_afterwards(tmp_path: Path) -> None:
    with pg_server.postgres_server() as url:
        port = make_url(url).port
        with psycopg2.connect(url) as connection, connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            data = Path(cursor.fetchone()[0])
        connection.close()
        assert data.is_dir()
    assert not data.parent.exists()
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_skips_only_without_binaries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_server, "find_bindir", lambda: None)
    with (
        pytest.raises(pytest.skip.Exception, match="Debian package: postgresql"),
        pg_server.postgres_server(),
    ):
        pass

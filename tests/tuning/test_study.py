"""Studies: reopened only with the same space, failing trials recorded, stale trials failed,
and the trial loop filling the study to its target."""

from __future__ import annotations

import time
import warnings

import optuna
import pytest

from ladder.errors import LadderError
from ladder.tuning.storage import check_reachable, open_storage, storage_url
from ladder.tuning.study import count_trials, fail_stale, make_pruner, open_study, run_trials
from ladder.urls import redacted


def journal(tmp_path):
    return open_storage(storage_url(None, tmp_path / "tune"))


def test_a_study_reopens_with_its_space_and_refuses_another(tmp_path):
    storage = journal(tmp_path)
    study = open_study(storage, "s", True, '{"C": 1}', 0, "none")
    run_trials(study, lambda t: t.suggest_float("C", 0, 1), 2)
    again = open_study(journal(tmp_path), "s", True, '{"C": 1}', 0, "none")
    assert count_trials(again) == 2
    with pytest.raises(LadderError, match="--study s: this study exists with another search space"):
        open_study(journal(tmp_path), "s", True, '{"C": 2}', 0, "none")
    with pytest.raises(LadderError, match="maximizes its metric"):
        open_study(journal(tmp_path), "s", False, '{"C": 1}', 0, "none")


def test_failing_trials_are_recorded_with_their_error_and_the_study_goes_on(tmp_path):
    study = open_study(journal(tmp_path), "s", True, "{}", 0, "none")

    def objective(trial):
        x = trial.suggest_int("x", 0, 10)
        if trial.number % 2:
            raise ValueError(f"odd trial {trial.number}\nsecond line")
        if trial.number == 4:
            return float("nan")
        return float(x)

    finished = []
    assert run_trials(study, objective, 6, on_trial=finished.append) == 6
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "FAIL", "FAIL", "FAIL"]
    assert study.trials[1].user_attrs["error"] == "ValueError: odd trial 1"
    assert study.trials[4].user_attrs["error"] == "the objective gave nan"
    assert all("duration_s" in t.user_attrs for t in study.trials)
    assert [t.number for t in finished] == list(range(6))


def test_pruned_trials_are_recorded_as_pruned(tmp_path):
    study = open_study(journal(tmp_path), "s", False, "{}", 0, "median")

    def objective(trial):
        raise optuna.TrialPruned()

    run_trials(study, objective, 2)
    assert [t.state.name for t in study.trials] == ["PRUNED", "PRUNED"]


def test_the_loop_stops_at_the_target_counting_earlier_trials_and_at_the_timeout(tmp_path):
    study = open_study(journal(tmp_path), "s", True, "{}", 0, "none")
    assert run_trials(study, lambda t: 1.0, 3) == 3
    assert run_trials(study, lambda t: 1.0, 5) == 2  # resumes: two more make five
    assert run_trials(study, lambda t: 1.0, 5) == 0
    assert run_trials(study, lambda t: 1.0, 100, timeout=0) == 0


def test_trials_left_running_by_an_interrupted_process_are_failed(tmp_path):
    study = open_study(journal(tmp_path), "s", True, "{}", 0, "none")
    study.ask()  # a trial whose process died
    assert fail_stale(study, "interrupted") == 1
    trial = study.trials[0]
    assert trial.state.name == "FAIL" and trial.user_attrs["error"] == "interrupted"
    assert fail_stale(study, "interrupted") == 0


def test_pruners_by_name():
    assert isinstance(make_pruner("median"), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("hyperband"), optuna.pruners.HyperbandPruner)
    assert isinstance(make_pruner("none"), optuna.pruners.NopPruner)


def test_an_unreachable_database_is_one_line_naming_host_and_port():
    with pytest.raises(LadderError) as caught:
        check_reachable("postgresql://me:secret@127.0.0.1:1/db", timeout=2)
    message = str(caught.value)
    assert "127.0.0.1:1" in message and "\n" not in message and "secret" not in message
    check_reachable("journal:/tmp/x.log")  # files need no server


def test_passwords_are_hidden():
    assert redacted("postgresql://me:secret@h:5/db") == "postgresql://me:***@h:5/db"
    assert redacted("postgresql://me@h/db") == "postgresql://me@h/db"
    assert redacted("journal:/a/b") == "journal:/a/b"


def test_a_database_trial_whose_process_went_quiet_is_failed_by_the_next_process(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=1)
    try:
        study = open_study(storage, "s", True, "{}", 0, "none")
        run_trials(study, lambda t: 1.0, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "heartbeats ... with optimize"
            dead = study.ask()  # its process beat once, then died
        storage.record_heartbeat(dead._trial_id)
        time.sleep(2.5)
        run_trials(study, lambda t: 1.0, 3)
        states = [t.state.name for t in study.trials]
        assert states == ["COMPLETE", "FAIL", "COMPLETE"]
    finally:
        storage.remove_session()
        storage.engine.dispose()


@pytest.mark.slow
def test_machines_creating_a_new_databases_tables_at_once_all_open_it(postgres_url):
    # without turns, PostgreSQL answers the losers of this race with UniqueViolation or
    # DuplicateTable (and their half-made storages leave connections open)
    import threading

    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from ladder.tuning.storage import close_storage

    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    for round_ in range(4):
        name = f"race_{round_}"
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
        start = threading.Barrier(6)
        errors: list[BaseException] = []

        def open_at_once(url=url, start=start, errors=errors):
            start.wait()
            try:
                close_storage(open_storage(url))
            except BaseException as exc:  # every thread's error is reported
                errors.append(exc)

        threads = [threading.Thread(target=open_at_once) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
    admin.dispose()

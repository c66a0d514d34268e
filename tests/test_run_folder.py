"""The run folder: plain names only, nothing written outside it, one writer at a time, and
files that other users can read."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import write_config

from ladder.cli import main
from ladder.errors import ConfigError, LadderError
from ladder.run_folder import locked, model_dir, name_problem
from ladder.runner.ladder import run

LADDER = str(Path(sys.executable).parent / "ladder")
LOGREG = [{"name": "logreg", "type": "logistic_regression"}]


@pytest.mark.parametrize(
    "name", ["", ".", "..", "../../../x", "a/b", "a\\b", "/etc", ".hidden", "tab\there"]
)
def test_names_that_are_not_plain_are_refused(name):
    assert name_problem(name) is not None


@pytest.mark.parametrize("name", ["logreg", "mlp+int8", "minilm→textcnn", "v1.2_final-B"])
def test_plain_names_pass(name):
    assert name_problem(name) is None


def test_a_model_name_that_climbs_out_is_a_config_error(tmp_path, table_csv, capsys):
    models = [{"name": "../../../x", "type": "logistic_regression"}]
    config = write_config(tmp_path, str(table_csv), models)
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "models[0].name: expected a plain name without /, got '../../../x'" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists() and not (tmp_path.parent / "x").exists()


def test_a_run_name_of_dot_dot_is_a_config_error(tmp_path, table_csv, monkeypatch, capsys):
    config = write_config(tmp_path, str(table_csv), LOGREG)
    monkeypatch.chdir(tmp_path)
    assert main(["run", str(config), "--set", "name=.."]) == 2
    assert "name: expected a plain name, got '..'" in capsys.readouterr().err
    assert not (tmp_path / "leaderboard.csv").exists()


def test_a_distilled_student_name_must_be_plain(tmp_path, table_csv):
    distill = [
        {"method": "distill", "teacher": "logreg", "student": {"name": "a/b", "type": "mlp"}}
    ]
    config = write_config(tmp_path, str(table_csv), LOGREG, compress=distill)
    with pytest.raises(ConfigError, match=r"compress\[0\]\.student\.name: expected a plain name"):
        run(config, out=tmp_path / "run")


def test_a_model_folder_that_links_outside_is_refused(tmp_path):
    (tmp_path / "run/models").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "run/models/logreg").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LadderError, match="resolves outside"):
        model_dir(tmp_path / "run", "logreg")
    assert model_dir(tmp_path / "run", "tree") == tmp_path / "run/models/tree"
    with pytest.raises(LadderError, match="model name: expected a plain name"):
        model_dir(tmp_path / "run", "..")


# ----------------------------------------------------------------------------- the lock

HOLD = """
import sys, time
from pathlib import Path
from ladder.run_folder import locked
with locked(Path(sys.argv[1])):
    print("holding", flush=True)
    time.sleep(float(sys.argv[2]))
    (Path(sys.argv[1]) / "done").touch()
"""


def hold_lock(run_dir: Path, seconds: float) -> subprocess.Popen:
    """Another process holding the run folder's lock for `seconds`."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline() == "holding\n"
    return process


def test_a_second_writer_is_told_who_holds_the_folder(tmp_path, table_csv, capsys):
    config = write_config(tmp_path, str(table_csv), LOGREG)
    with hold_lock(tmp_path / "run", 60) as holder:
        args = [str(config), "--out", str(tmp_path / "run")]
        assert main(["run", *args]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {tmp_path / 'run'} is in use by process {holder.pid} on ")
        assert err.endswith("; wait for it to finish, or pass --wait")
        assert main(["train", *args, "--model", "logreg"]) == 2
        assert main(["compress", str(tmp_path / "run")]) == 2
        holder.kill()
    assert main(["run", *args]) == 0  # a dead holder's lock is gone with it


def test_wait_waits_for_the_holder(tmp_path):
    with hold_lock(tmp_path / "run", 1.0), locked(tmp_path / "run", wait=True):
        assert (tmp_path / "run/done").exists()  # the holder had finished its work


@pytest.mark.slow
def test_three_concurrent_forced_runs_with_wait_all_finish(tmp_path, table_csv):
    models = [*LOGREG, {"name": "net", "type": "mlp", "hidden": [8]}]
    config = write_config(tmp_path, str(table_csv), models, evaluate={"bootstrap": 0})
    command = [LADDER, "run", str(config), "--out", str(tmp_path / "run"), "--force", "--wait"]
    processes = [
        subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err
    leftovers = [p.name for p in (tmp_path / "run/models").rglob(".*") if p.name != ".lock"]
    assert leftovers == []  # no staging or old artifact folders left behind


# ----------------------------------------------------------------------------- modes


def test_a_run_folder_is_readable_by_other_users(tmp_path, table_csv):
    models = [*LOGREG, {"name": "net", "type": "mlp", "hidden": [8]}]
    config = write_config(tmp_path, str(table_csv), models, evaluate={"bootstrap": 0})
    previous = os.umask(0o022)
    try:
        run(config, out=tmp_path / "run")
    finally:
        os.umask(previous)
    paths = [tmp_path / "run", *(tmp_path / "run").rglob("*")]
    modes = {str(p.relative_to(tmp_path)): stat.S_IMODE(p.stat().st_mode) for p in paths}
    wrong = {path: oct(mode) for path, mode in modes.items() if mode not in (0o644, 0o755)}
    assert wrong == {}
    assert modes["run/models/net/artifact"] == 0o755
    assert modes["run/models/net/artifact/manifest.json"] == 0o644

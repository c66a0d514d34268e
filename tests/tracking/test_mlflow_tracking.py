"""Tracking to MLflow: a real MLflow server (SQLite backend) on 127.0.0.1, a local SQLite store
and the file store; an unreachable server warns once (or, when required, stops the run with
exit code 2); without a tracking URI MLflow is never imported."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import pytest
from helpers import write_config

from ladder import __version__
from ladder.cli import main
from ladder.config import load_config
from ladder.runner.ladder import run, train
from ladder.tracking import open_tracker
from ladder.tracking.server import host_port
from ladder.urls import redacted

pytestmark = [
    pytest.mark.slow,  # one MLflow server for the module (~7 s), then a few small runs
    # MLflow's SQLAlchemy store uses loader options SQLAlchemy 2.1 deprecates
    pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning"),
]

MODELS = [
    {"name": "logreg", "type": "logistic_regression"},
    {"name": "net", "type": "mlp", "hidden": [8]},
]
FAST = {"epochs": 2, "batch_size": 16, "early_stopping": None}


def _free_port() -> int:
    """A TCP port nothing listens on (bound, then closed)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    """A real MLflow tracking server with a SQLite backend and proxied artifacts; its URI."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no huey job runner
    env.pop("MLFLOW_TRACKING_URI", None)
    uri = f"http://127.0.0.1:{port}"
    with (root / "server.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            _wait_for_health(uri, process, root / "server.log")
            yield uri
        finally:
            os.killpg(process.pid, signal.SIGTERM)  # the server and its uvicorn worker
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_for_health(uri: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"mlflow server exited {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"mlflow server did not answer /health in 90 s:\n{log.read_text()[-3000:]}")


def _config(tmp_path: Path, table_csv: Path, models=MODELS, **extra) -> Path:
    return write_config(
        tmp_path, str(table_csv), models, train=FAST, evaluate={"bootstrap": 50}, **extra
    )


def _runs(uri: str, experiment: str) -> tuple[list, dict]:
    """The experiment's parent runs (oldest first) and each one's nested runs by name."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    assert found is not None, f"no experiment {experiment}"
    runs = client.search_runs([found.experiment_id], order_by=["attributes.start_time ASC"])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = {
        p.info.run_id: {
            r.info.run_name: r
            for r in runs
            if r.data.tags.get("mlflow.parentRunId") == p.info.run_id
        }
        for p in parents
    }
    return parents, children


def _artifacts(uri: str, run_id: str, path: str | None = None) -> set[str]:
    from mlflow.tracking import MlflowClient

    return {f.path for f in MlflowClient(uri).list_artifacts(run_id, path)}


# ----------------------------------------------------------------------------- a real server


def test_a_run_is_a_parent_run_with_a_nested_run_per_model(server, tmp_path, table_csv):
    from mlflow.tracking import MlflowClient

    tracking = {"mlflow": server, "experiment": "ladder-run"}
    config = _config(tmp_path, table_csv, tracking=tracking, compress=[{"method": "quantize"}])
    out = tmp_path / "run"
    run(config, out=out)

    (parent,), children = _runs(server, "ladder-run")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "toy"
    params, tags = parent.data.params, parent.data.tags
    assert params["seed"] == "0" and params["train.epochs"] == "2"
    assert params["models.net.hidden"] == "[8]" and params["models.net.type"] == "mlp"
    assert tags["ladder.run_dir"] == str(out.resolve())
    assert tags["ladder.command"] == "run" and tags["ladder.version"] == __version__
    assert {"report.html", "leaderboard.csv"} <= _artifacts(server, parent.info.run_id)
    copy = MlflowClient(server).download_artifacts(parent.info.run_id, "report.html", tmp_path)
    assert Path(copy).read_bytes() == (out / "report.html").read_bytes()

    rungs = children[parent.info.run_id]
    assert set(rungs) == {"logreg", "net", "net+int8"}
    net = rungs["net"]
    assert net.data.params["model_type"] == "mlp" and net.data.params["hidden"] == "[8]"
    assert net.data.tags["ladder.model_dir"] == str((out / "models/net").resolve())
    for metric in ("train_loss", "val_loss", "val_accuracy"):
        history = MlflowClient(server).get_metric_history(net.info.run_id, metric)
        assert [point.step for point in history] == [1, 2], metric
    test = json.loads((out / "models/net/metrics.json").read_text())
    assert net.data.metrics["test_accuracy"] == pytest.approx(test["accuracy"])
    assert "test_confusion_matrix" not in net.data.metrics  # numeric scalars only
    assert {"artifact/manifest.json", "artifact/model.onnx"} <= _artifacts(
        server, net.info.run_id, "artifact"
    )
    assert rungs["net+int8"].data.params["compression.method"] == "quantize"
    assert "test_accuracy" in rungs["logreg"].data.metrics

    run(config, out=out)  # all cached: the models are logged again, with the new parent run
    parents, children = _runs(server, "ladder-run")
    assert len(parents) == 2
    assert set(children[parents[1].info.run_id]) == {"logreg", "net", "net+int8"}


def test_train_logs_its_one_model(server, tmp_path, table_csv):
    tracking = {"mlflow": server, "experiment": "ladder-train"}
    config = _config(tmp_path, table_csv, tracking=tracking)
    train(config, "logreg", out=tmp_path / "run")
    (parent,), children = _runs(server, "ladder-train")
    assert parent.data.tags["ladder.command"] == "train"
    assert parent.info.status == "FINISHED"
    assert list(children[parent.info.run_id]) == ["logreg"]


def test_tuning_trials_are_nested_runs(server, tmp_path, table_csv):
    tracking = {"mlflow": server, "experiment": "ladder-tune"}
    config = load_config(_config(tmp_path, table_csv, tracking=tracking))
    trials = [
        {
            "number": 0,
            "state": "COMPLETE",
            "value": 0.8,
            "params": {"optimizer.lr": 0.01, "hidden": [8]},
            "error": None,
            "duration_s": 1.5,
            "intermediate": {1: 0.5, 2: 0.8},
        },
        {"number": 1, "state": "PRUNED", "value": None, "params": {}, "intermediate": {1: 0.3}},
        {"number": 2, "state": "FAIL", "value": None, "error": "ValueError: boom"},
    ]
    with open_tracker(config, tmp_path, "tune", "toy tune") as tracker:
        tracker.log_trials("net", "accuracy", trials)

    (parent,), children = _runs(server, "ladder-tune")
    assert parent.data.tags["ladder.command"] == "tune" and parent.info.run_name == "toy tune"
    runs = children[parent.info.run_id]
    assert set(runs) == {"net trial 0", "net trial 1", "net trial 2"}
    best = runs["net trial 0"]
    assert best.data.params == {"optimizer.lr": "0.01", "hidden": "[8]"}
    assert best.data.metrics["val_accuracy"] == 0.8 and best.data.tags["state"] == "COMPLETE"
    from mlflow.tracking import MlflowClient

    by_epoch = MlflowClient(server).get_metric_history(best.info.run_id, "val_accuracy_by_epoch")
    assert [(p.step, p.value) for p in by_epoch] == [(1, 0.5), (2, 0.8)]
    assert "val_accuracy" not in runs["net trial 1"].data.metrics
    assert runs["net trial 2"].data.tags["error"] == "ValueError: boom"
    statuses = {name: r.info.status for name, r in runs.items()}
    assert statuses == {"net trial 0": "FINISHED", "net trial 1": "KILLED", "net trial 2": "FAILED"}


def test_ladder_tune_logs_its_trials_and_the_tuned_model(server, tmp_path, table_csv):
    from ladder.runner.tune import TuneRequest, tune

    tracking = {"mlflow": server, "experiment": "ladder-tune-e2e"}
    logreg = {"name": "logreg", "type": "logistic_regression", "tune": {"trials": 3}}
    config = _config(tmp_path, table_csv, models=[logreg], tracking=tracking)
    tune(config, TuneRequest("logreg"), out=tmp_path / "run")

    (parent,), children = _runs(server, "ladder-tune-e2e")
    assert parent.info.status == "FINISHED" and parent.info.run_name == "tune logreg"
    runs = children[parent.info.run_id]
    assert {"logreg trial 0", "logreg trial 1", "logreg trial 2", "logreg (tuned)"} <= set(runs)
    assert "C" in runs["logreg trial 0"].data.params
    assert "test_accuracy" in runs["logreg (tuned)"].data.metrics
    assert "tune" in _artifacts(server, parent.info.run_id)


def test_a_failing_block_ends_the_parent_run_failed(server, tmp_path, table_csv):
    tracking = {"mlflow": server, "experiment": "ladder-failed"}
    config = load_config(_config(tmp_path, table_csv, tracking=tracking))
    with pytest.raises(ValueError, match="boom"), open_tracker(config, tmp_path):
        raise ValueError("boom")
    (parent,), _ = _runs(server, "ladder-failed")
    assert parent.info.status == "FAILED"


def test_the_environment_variable_is_used_when_the_config_has_no_uri(
    server, tmp_path, table_csv, monkeypatch
):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server)
    config = _config(tmp_path, table_csv, models=MODELS[:1], name="fromenv")
    run(config, out=tmp_path / "run")
    (parent,), children = _runs(server, "fromenv")  # experiment: the config's name
    assert list(children[parent.info.run_id]) == ["logreg"]


def test_a_failure_after_the_start_warns_once_and_logs_nothing_more(server, tmp_path, table_csv):
    from mlflow.tracking import MlflowClient

    out = tmp_path / "run"
    config = _config(tmp_path, table_csv, models=MODELS[:1])
    run(config, out=out)  # untracked: the folders to log
    tracked = [f"tracking.mlflow={server}", "tracking.experiment=ladder-broken"]
    tracker = open_tracker(load_config(config, tracked), out)
    with pytest.warns(RuntimeWarning) as caught, tracker:
        # the server goes away once the parent run is open
        tracker._client = MlflowClient(f"http://127.0.0.1:{_free_port()}")
        tracker.log_rung(out / "models/logreg")
        tracker.log_report(out)
    assert len(caught) == 1
    assert "training goes on without tracking" in str(caught[0].message)
    (parent,), children = _runs(server, "ladder-broken")
    assert parent.info.status == "RUNNING" and not children[parent.info.run_id]


# ----------------------------------------------------------------------------- local stores


def test_a_local_sqlite_store(tmp_path, table_csv, monkeypatch):
    monkeypatch.chdir(tmp_path)  # MLflow puts a SQLite store's artifacts in ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _config(tmp_path, table_csv, models=MODELS[:1], tracking={"mlflow": uri})
    run(config, out=tmp_path / "run")
    (parent,), children = _runs(uri, "toy")
    assert parent.data.tags["ladder.run_dir"] == str((tmp_path / "run").resolve())
    logreg = children[parent.info.run_id]["logreg"]
    assert "artifact/manifest.json" in _artifacts(uri, logreg.info.run_id, "artifact")
    assert "report.html" in _artifacts(uri, parent.info.run_id)


def test_the_file_store_where_mlflow_allows_it(tmp_path, table_csv, monkeypatch):
    # MLflow 3 keeps its file store in maintenance mode: it refuses it unless opted in
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    uri = f"file:{tmp_path / 'mlruns'}"
    config = _config(tmp_path, table_csv, models=MODELS[:1], tracking={"mlflow": uri})
    run(config, out=tmp_path / "run")
    (parent,), children = _runs(uri, "toy")
    assert list(children[parent.info.run_id]) == ["logreg"]
    assert "leaderboard.csv" in _artifacts(uri, parent.info.run_id)


def test_a_refused_store_warns_once_and_training_goes_on(tmp_path, table_csv, monkeypatch):
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    uri = f"file:{tmp_path / 'mlruns'}"
    config = _config(tmp_path, table_csv, models=MODELS[:1], tracking={"mlflow": uri})
    with pytest.warns(RuntimeWarning) as caught:
        result = run(config, out=tmp_path / "run")
    assert len(caught) == 1 and "maintenance mode" in str(caught[0].message)
    assert result.status == {"logreg": "ok"} and (tmp_path / "run/leaderboard.csv").is_file()


# ----------------------------------------------------------------------------- no server


def test_an_unreachable_server_warns_once_and_training_goes_on(tmp_path, table_csv):
    uri = f"http://127.0.0.1:{_free_port()}"
    config = _config(tmp_path, table_csv, models=MODELS[:1], tracking={"mlflow": uri})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run(config, out=tmp_path / "run")
    tracking = [w for w in caught if "tracking" in str(w.message)]
    assert len(tracking) == 1
    assert str(tracking[0].message).startswith(f"tracking: MLflow server {uri} unreachable (")
    assert result.status == {"logreg": "ok"} and (tmp_path / "run/leaderboard.csv").is_file()


def test_a_required_server_that_is_unreachable_exits_2(tmp_path, table_csv, capsys):
    port = _free_port()
    tracking = {"mlflow": f"http://127.0.0.1:{port}", "required": True}
    config = _config(tmp_path, table_csv, models=MODELS[:1], tracking=tracking)
    code = main(["run", str(config), "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if "unreachable" in line]
    assert len(lines) == 1 and f"127.0.0.1:{port}" in lines[0]
    assert "Traceback" not in err and not (tmp_path / "run/leaderboard.csv").exists()


def test_without_a_tracking_uri_mlflow_is_not_imported(tmp_path, table_csv):
    config = _config(tmp_path, table_csv, models=MODELS[:1])
    script = (
        "import sys; from ladder.runner.ladder import run; "
        "run(sys.argv[1], out=sys.argv[2]); print('mlflow' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(config), str(tmp_path / "run")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "False"
    assert (tmp_path / "run/leaderboard.csv").is_file()


def test_a_password_in_the_uri_is_never_shown():
    uri = "https://me:s3cret@mlflow.example.com/prefix"
    assert redacted(uri) == "https://me:***@mlflow.example.com/prefix"
    assert host_port(uri) == "mlflow.example.com:443"
    assert host_port("http://localhost:5000") == "localhost:5000"

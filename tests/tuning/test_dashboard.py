"""optuna-dashboard reads the study `ladder tune` keeps in the run folder's journal file."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import write_config

from ladder.runner.tune import TuneRequest, tune

pytest.importorskip("optuna_dashboard")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_dashboard_shows_the_study_of_the_journal_file(tmp_path, table_csv):
    model = {"name": "logreg", "type": "logistic_regression", "tune": {"trials": 3}}
    tune(write_config(tmp_path, str(table_csv), [model]), TuneRequest("logreg"), tmp_path / "run")
    journal = tmp_path / "run" / "tune" / "journal.log"
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("optuna-dashboard")), str(journal),
        "--port", str(port), "--server", "wsgiref", "--quiet",
    ]  # fmt: skip
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as server:
        try:
            studies = None
            for _ in range(100):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                        studies = json.load(reply)["study_summaries"]
                    break
                except OSError:
                    time.sleep(0.2)
            assert studies is not None, server.stdout.read1().decode() if server.poll() else ""
            (study,) = studies
            assert study["study_name"] == "toy-logreg"
            assert study["directions"] == ["maximize"]
        finally:
            server.terminate()

"""An artifact built by one user is served by another (the Dockerfile's non-root server
reading a host-built artifact): its files must not be private to their writer."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests
from helpers import make_table, write_config
from serve_helpers import free_port

from ladder.runner.ladder import run

# The interpreter may live where only root can read (/root/.pyenv). So a first server, run as
# root, records the modules serving loads; the second imports them as root, then becomes nobody
# before it reads anything of the artifact.
RECORD = """
import atexit, sys
import ladder.cli
atexit.register(lambda: open(sys.argv[1], "w").write("\\n".join(sorted(sys.modules))))
sys.exit(ladder.cli.main(sys.argv[2:]))
"""
AS_NOBODY = """
import importlib, os, sys
for name in open(sys.argv[1]).read().split():
    try:
        importlib.import_module(name)
    except Exception:
        pass
os.setgroups([]); os.setgid(65534); os.setuid(65534)
import ladder.cli
sys.exit(ladder.cli.main(sys.argv[2:]))
"""

pytestmark = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0, reason="switching users needs root"
)


@pytest.fixture
def shared_folder():
    """A folder every user can enter (pytest's tmp_path is private to its owner)."""
    folder = Path(tempfile.mkdtemp(prefix="ladder-other-user-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_another_user_serves_an_artifact_built_here(shared_folder):
    make_table().to_csv(shared_folder / "animals.csv", index=False)
    models = [{"name": "logreg", "type": "logistic_regression"}]
    config = write_config(shared_folder, str(shared_folder / "animals.csv"), models)
    previous = os.umask(0o022)  # an ordinary user's umask
    try:
        run(config, out=shared_folder / "run")
    finally:
        os.umask(previous)
    artifact = shared_folder / "run/models/logreg/artifact"
    modules = shared_folder / "modules.txt"
    env = {**os.environ, "HOME": str(shared_folder)}
    for script in (RECORD, AS_NOBODY):  # as root (recording the modules), then as nobody
        port = free_port()
        args = [str(modules), "serve", str(artifact), "--port", str(port), "--grpc-port", "0"]
        command = [sys.executable, "-c", script, *args]
        with subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True) as server:
            try:
                url = f"http://127.0.0.1:{port}/v2/models/logreg/infer"
                answer = _first_answer(server, url)
                assert answer.status_code == 200, answer.text
                outputs = {o["name"]: o for o in answer.json()["outputs"]}
                assert outputs["label"]["data"] == ["dog"]
            finally:
                server.terminate()
                server.wait(timeout=30)
        assert modules.is_file()


def _first_answer(server: subprocess.Popen, url: str) -> requests.Response:
    body = {
        "inputs": [
            {"name": "size", "datatype": "FP64", "shape": [1], "data": [2.0]},
            {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.5]},
            {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["green"]},
        ]
    }
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the server stopped: {server.stderr.read()}")
        try:
            answer = requests.post(url, json=body, timeout=10)
            if answer.status_code != 503:  # 503: still warming up
                return answer
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    pytest.fail("the server did not answer within 90 s")

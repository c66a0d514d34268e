"""`ladder serve` as a real process: refusals before any port is bound (exit 2, one line, no
traceback), readiness, and a graceful SIGTERM that answers the request in flight."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from serve_helpers import free_port

from ladder import load

TABLE_BODY = {
    "inputs": [
        {"name": "size", "datatype": "FP64", "shape": [1], "data": [2.0]},
        {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.5]},
        {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["green"]},
    ]
}


def serve_command(*args: Any) -> list[str]:
    return [sys.executable, "-m", "ladder.cli", "serve", *map(str, args)]


def run_serve(*args: Any, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`ladder serve ARGS` expected to stop by itself."""
    return subprocess.run(
        serve_command(*args), capture_output=True, text=True, timeout=120, env=env
    )


def assert_port_free(port: int) -> None:
    """Nothing listens on `port` (closed connections may linger in TIME_WAIT)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        s.listen()


def assert_one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr and "serving" not in done.stderr
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.fixture
def artifact(tabular_artifacts, tmp_path) -> Path:
    """A private copy of the logreg artifact (the tests may damage it)."""
    return Path(shutil.copytree(tabular_artifacts["logreg"], tmp_path / "logreg"))


def test_a_missing_artifact_folder_exits_2(tmp_path):
    port, grpc_port = free_port(), free_port()
    missing = tmp_path / "nowhere"
    done = run_serve(missing, "--port", port, "--grpc-port", grpc_port)
    assert_one_line_error(done, str(missing), "no such artifact folder")
    assert_port_free(port)
    assert_port_free(grpc_port)


def test_a_tampered_artifact_exits_2_before_binding_a_port(artifact):
    model = artifact / "model.onnx"
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit of one byte
    model.write_bytes(bytes(data))
    grpc_port = free_port()
    with socket.socket() as taken:  # the REST port is busy: loading must fail first
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(artifact, "--port", port, "--grpc-port", grpc_port)
    assert_one_line_error(done, str(model), "checksum mismatch")
    assert_port_free(port)
    assert_port_free(grpc_port)


def test_an_artifact_missing_a_file_exits_2(artifact):
    (artifact / "preprocess.json").unlink()
    done = run_serve(artifact, "--port", free_port(), "--grpc-port", free_port())
    assert_one_line_error(done, "preprocess.json", "missing")


def test_a_taken_rest_port_exits_2_and_leaves_the_grpc_port_free(artifact):
    grpc_port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_serve(artifact, "--port", port, "--grpc-port", grpc_port)
    assert_one_line_error(done, f"--port {port}", "cannot listen")
    assert_port_free(grpc_port)


def test_a_taken_grpc_port_exits_2_and_leaves_the_rest_port_free(artifact):
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        grpc_port = taken.getsockname()[1]
        done = run_serve(artifact, "--port", port, "--grpc-port", grpc_port)
    assert done.returncode == 2, done.stderr
    last = done.stderr.strip().splitlines()[-1]  # gRPC's C core logs its own line before ours
    assert last.startswith(f"error: --grpc-port {grpc_port}: cannot listen")
    assert "Traceback" not in done.stderr and "serving" not in done.stderr
    assert_port_free(port)


@pytest.mark.parametrize("value", [None, ""])
def test_an_unset_api_key_variable_exits_2(artifact, value):
    env = {k: v for k, v in os.environ.items() if k != "LADDER_TEST_KEY"}
    if value is not None:
        env["LADDER_TEST_KEY"] = value
    port = free_port()
    done = run_serve(
        artifact, "--port", port, "--grpc-port", 0, "--api-key-env", "LADDER_TEST_KEY", env=env
    )
    assert_one_line_error(done, "--api-key-env LADDER_TEST_KEY", "unset or empty")
    assert_port_free(port)


def test_bad_batching_options_are_usage_errors(artifact):
    done = run_serve(artifact, "--max-batch-size", 0, "--port", free_port())
    assert done.returncode == 2
    assert "max-batch-size" in done.stderr and "Traceback" not in done.stderr


def grpc_inputs(triton: Any) -> list[Any]:
    """TABLE_BODY's tensors for tritonclient.grpc."""
    inputs = []
    for tensor in TABLE_BODY["inputs"]:
        item = triton.InferInput(tensor["name"], tensor["shape"], tensor["datatype"])
        dtype = object if tensor["datatype"] == "BYTES" else np.float64
        data = [v.encode() for v in tensor["data"]] if dtype is object else tensor["data"]
        item.set_data_from_numpy(np.array(data, dtype=dtype))
        inputs.append(item)
    return inputs


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 90) -> None:
    """Until GET /v2/health/ready answers 200; fails if the process exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"ladder serve exited {proc.returncode}: {proc.stderr.read()}")
        try:
            if requests.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.05)
    pytest.fail("ladder serve did not become ready")


def rest_ready(url: str) -> int | str:
    """The status of GET /v2/health/ready, or "refused" once the listener has closed."""
    try:
        return requests.get(f"{url}/v2/health/ready", timeout=1).status_code
    except requests.ConnectionError:
        return "refused"


@pytest.mark.slow
def test_sigterm_turns_not_ready_at_once_and_drains_the_request_in_flight(artifact):
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    port, grpc_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    options = ["--max-batch-delay-ms", 2500, "--max-batch-size", 64, "--drain-timeout-s", 10]
    command = serve_command(artifact, "--port", port, "--grpc-port", grpc_port, *options)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    try:
        wait_ready(proc, url)
        assert client.is_server_ready()
        answer: dict[str, Any] = {}

        def slow_request() -> None:  # waits 2.5 s in the queue for company
            started = time.monotonic()
            try:
                reply = requests.post(f"{url}/v2/models/logreg/infer", json=TABLE_BODY, timeout=30)
            except requests.RequestException as exc:
                answer["status"] = repr(exc)
                return
            answer.update(status=reply.status_code, body=reply.json())
            answer["seconds"] = time.monotonic() - started

        request = threading.Thread(target=slow_request)
        request.start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        stopped = time.monotonic()

        assert rest_ready(url) in (503, "refused")  # never 200 again
        assert client.is_server_ready() is False  # gRPC still answers while draining
        assert time.monotonic() - stopped < 1.5
        with pytest.raises(InferenceServerException) as refused:
            client.infer("logreg", grpc_inputs(triton))
        assert refused.value.status() == "StatusCode.UNAVAILABLE"
        assert request.is_alive()  # the slow request is still waiting in the queue

        request.join(30)
        assert answer["status"] == 200, answer
        assert answer["seconds"] >= 2.4
        outputs = {o["name"]: o for o in answer["body"]["outputs"]}
        record = {t["name"]: t["data"][0] for t in TABLE_BODY["inputs"]}
        assert outputs["label"]["data"] == list(load(artifact).predict([record]))
        _, stderr = proc.communicate(timeout=10)
        assert proc.returncode == 0, stderr  # within the drain timeout
        assert time.monotonic() - stopped < 10
    finally:
        client.close()
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reap it and close the pipes
    assert "Traceback" not in stderr, stderr
    assert f"serving logreg on {url}" in stderr
    assert_port_free(port)
    assert_port_free(grpc_port)


def serve_and_stop(artifact: Path, *args: Any, requests_to_make: Callable[[str], None]) -> str:
    """Run `ladder serve ARTIFACT ARGS` until ready, make requests, stop it; its stderr."""
    port = free_port()
    command = serve_command(artifact, "--port", port, "--grpc-port", 0, *args)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}")
        requests_to_make(f"http://127.0.0.1:{port}")
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stderr
    return stderr


def test_serve_logs_one_access_line_per_request_and_warns_off_loopback(artifact):
    """On 0.0.0.0 without an API key: a warning line at start-up; then one access line per
    request (method, path, status, ms, model), never a body, and no line from uvicorn's own
    access log."""
    secret = "colour-secret-1b2c"
    body = {"inputs": [*TABLE_BODY["inputs"][:2], {**TABLE_BODY["inputs"][2], "data": [secret]}]}
    rows = {"inputs": [{**t, "shape": [3], "data": t["data"] * 3} for t in TABLE_BODY["inputs"]]}
    answers: list[requests.Response] = []

    def make(url: str) -> None:
        answers.append(requests.post(f"{url}/v2/models/logreg/infer", json=body, timeout=30))
        answers.append(requests.post(f"{url}/v2/models/logreg/infer", json=rows, timeout=30))

    options = ["--host", "0.0.0.0", "--max-request-rows", 2]
    stderr = serve_and_stop(artifact, *options, requests_to_make=make)
    lines = stderr.splitlines()
    assert answers[0].status_code == 200, answers[0].text
    assert answers[1].status_code == 413 and "limit of 2 rows" in answers[1].json()["error"]
    warning = [line for line in lines if line.startswith("warning: serving on 0.0.0.0")]
    assert len(warning) == 1 and "without an API key" in warning[0]
    assert any("(at most 2 rows and 8.0 MiB per request)" in line for line in lines)
    infer = [line for line in lines if "POST /v2/models/logreg/infer" in line]
    assert len(infer) == 2  # one line each, uvicorn's access log adds none
    assert " ladder.serve.access: rest POST /v2/models/logreg/infer 200 " in infer[0]
    assert " 413 " in infer[1] and "ms model=logreg client=127.0.0.1" in infer[1]
    assert secret not in stderr and "Traceback" not in stderr


def test_log_level_warning_turns_the_access_log_off_and_loopback_does_not_warn(artifact):
    def make(url: str) -> None:
        assert requests.post(f"{url}/v2/models/logreg/infer", json=TABLE_BODY, timeout=30).ok

    stderr = serve_and_stop(artifact, "--log-level", "warning", requests_to_make=make)
    assert "ladder.serve.access" not in stderr and "warning" not in stderr
    assert "serving logreg on http://127.0.0.1" in stderr

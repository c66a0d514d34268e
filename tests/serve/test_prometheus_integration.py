"""A real Prometheus (the Debian `prometheus` binary, on loopback) scrapes with a config derived
from deploy/prometheus.yml: first a stand-in exposition, then `ladder serve` after inference
requests, until its query API reports the request counts the server answered."""

from __future__ import annotations

import importlib.util
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import make_table, write_config

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
LADDER = Path(sys.executable).parent / "ladder"
needs_prometheus = pytest.mark.skipif(
    PROMETHEUS is None, reason="the prometheus binary is not on PATH (Debian package: prometheus)"
)


def serve_missing() -> str | None:
    """Why `ladder serve` cannot run here, or None when it can."""
    if importlib.util.find_spec("ladder.serve") is None:
        return "ladder serve not available yet"
    if importlib.util.find_spec("ladder.serve.server") is None or not LADDER.exists():
        return "ladder serve not available yet"
    import ladder.cli

    return None if hasattr(ladder.cli, "serve") else "ladder serve not available yet"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(
    check: Callable[[], Any],
    what: str,
    timeout: float = 30.0,
    accept: Callable[[Any], bool] = bool,
) -> Any:
    """Poll `check` until `accept` takes its result; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, ValueError) as error:  # not listening yet, or a half-written answer
            last = error
        else:
            if accept(last):
                return last
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


def http(url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    """(status, body) of a GET, or of a JSON POST when `body` is given."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@contextmanager
def running(command: list[str], log: Path) -> Iterator[subprocess.Popen]:
    """A subprocess writing to `log`, stopped (SIGTERM, then SIGKILL) on the way out."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@contextmanager
def prometheus(tmp_path: Path, target: str) -> Iterator[str]:
    """A Prometheus scraping `target` every second with deploy/prometheus.yml's ladder job."""
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "ladder"]
    job.update(scrape_interval="1s", scrape_timeout="1s", static_configs=[{"targets": [target]}])
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    port = free_port()
    command = [
        str(PROMETHEUS),
        f"--config.file={path}",
        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    log = tmp_path / "prometheus.log"
    with running(command, log) as process:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, f"prometheus exited:\n{log.read_text()[-2000:]}"
            return http(f"{url}/-/ready")[0] == 200

        wait_for(ready, "prometheus to be ready")
        yield url


def query(url: str, promql: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) per series of an instant query."""
    status, body = http(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}")
    assert status == 200, body
    answer = json.loads(body)
    assert answer["status"] == "success", answer
    return [(row["metric"], float(row["value"][1])) for row in answer["data"]["result"]]


def values_by(url: str, promql: str, label: str) -> dict[str, float]:
    return {labels[label]: value for labels, value in query(url, promql)}


def sample(exposition: bytes, series: str) -> float:
    """The value of one series in a text exposition (0 when absent)."""
    for line in exposition.decode().splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


@needs_prometheus
def test_prometheus_scrapes_an_exposition_with_the_shipped_job(tmp_path):
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    registry = CollectorRegistry()
    requests = Counter(
        "ladder_requests", "Requests.", ["model", "protocol", "code"], registry=registry
    )
    requests.labels("toy", "rest", "200").inc(3)
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    try:
        with prometheus(tmp_path, f"127.0.0.1:{port}") as url:
            counts = wait_for(
                lambda: values_by(url, 'ladder_requests_total{job="ladder"}', "code"),
                "ladder_requests_total in prometheus",
            )
            assert counts == {"200": 3.0}
            assert values_by(url, "up", "job") == {"ladder": 1.0}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> Path:
    """A logistic regression on the animals table (inputs size, weight: FP64; colour: BYTES)."""
    if reason := serve_missing():
        pytest.skip(reason)
    from ladder.runner.ladder import train

    tmp = tmp_path_factory.mktemp("served")
    table = tmp / "animals.csv"
    make_table().to_csv(table, index=False)
    config = write_config(tmp, str(table), [{"name": "lr", "type": "logistic_regression"}])
    train(config, "lr", out=tmp / "run")
    return tmp / "run" / "models" / "lr" / "artifact"


def infer_body(metadata: dict[str, Any], rows: int, drop: str | None = None) -> dict[str, Any]:
    """An Open Inference Protocol request of `rows` table rows, one JSON tensor per input."""
    table = make_table(n=rows, seed=1)
    inputs = [
        {
            "name": spec["name"],
            "datatype": spec["datatype"],
            "shape": [rows],
            "data": table[spec["name"]].tolist(),
        }
        for spec in metadata["inputs"]
        if spec["name"] != drop
    ]
    return {"inputs": inputs}


@needs_prometheus
def test_prometheus_collects_what_ladder_serve_answered(artifact, tmp_path):
    port, grpc_port = free_port(), free_port()
    command = [str(LADDER), "serve", str(artifact), "--port", str(port)]
    command += ["--grpc-port", str(grpc_port)]
    log = tmp_path / "serve.log"
    with running(command, log) as server:
        base = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert server.poll() is None, f"ladder serve exited:\n{log.read_text()[-2000:]}"
            return http(f"{base}/v2/health/ready")[0] == 200

        wait_for(ready, "ladder serve to be ready", timeout=60)
        name = json.loads((artifact / "manifest.json").read_text())["name"]
        warm_up_rows = sample(
            http(f"{base}/metrics")[1], f'ladder_batch_size_sum{{model="{name}"}}'
        )
        status, body = http(f"{base}/v2/models/{name}")
        assert status == 200, body
        metadata = json.loads(body)
        for _ in range(3):
            status, body = http(f"{base}/v2/models/{name}/infer", infer_body(metadata, rows=2))
            assert status == 200, body
        dropped = metadata["inputs"][0]["name"]
        status, body = http(f"{base}/v2/models/{name}/infer", infer_body(metadata, 2, dropped))
        assert status == 400 and dropped in body.decode(), body

        status, exposition = http(f"{base}/metrics")
        assert status == 200
        if PROMTOOL is not None:
            lint = subprocess.run(
                [PROMTOOL, "check", "metrics"], input=exposition, capture_output=True
            )
            assert lint.returncode == 0, lint.stdout + lint.stderr

        with prometheus(tmp_path, f"127.0.0.1:{port}") as url:
            counts = f'ladder_requests_total{{job="ladder", model="{name}", protocol="rest"}}'
            expected = {"200": 3.0, "400": 1.0}
            wait_for(
                lambda: values_by(url, counts, "code"),
                f"{counts} to read {expected}",
                accept=expected.__eq__,
            )
            rows = f'ladder_batch_size_sum{{model="{name}"}}'
            assert values_by(url, rows, "model") == {name: warm_up_rows + 6.0}  # each row once
            assert values_by(url, f'ladder_model_ready{{model="{name}"}}', "model") == {name: 1.0}

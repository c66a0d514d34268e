"""Every answer is logged and counted: the access log (one line a request, never a body), the
request metrics for every inference answer (400 for an unparseable body, 500, and 499 for a
client that went away, whose queued work never runs)."""

from __future__ import annotations

import logging
import socket
import time

import pytest
import requests
from serve_helpers import LiveServer

from ladder.serve.access import ACCESS

SECRET = "body-secret-7f3a"
TABLE = {
    "inputs": [
        {"name": "size", "datatype": "FP64", "shape": [1], "data": [2.0]},
        {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.5]},
        {"name": "colour", "datatype": "BYTES", "shape": [1], "data": [SECRET]},
    ]
}
NESTED = b"[" * 5000 + b"]" * 5000


def sample(url: str, series: str) -> float:
    """The value of one series in the server's /metrics (0 when absent)."""
    for line in requests.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith(series + " "):
            return float(line.split()[-1])
    return 0.0


def counted(url: str, model: str, code: int) -> float:
    return sample(url, f'ladder_requests_total{{code="{code}",model="{model}",protocol="rest"}}')


def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out waiting")
        time.sleep(0.01)


def test_each_request_is_one_access_line_without_its_body(live_server, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS.name)
    url = live_server.url
    requests.post(f"{url}/v2/models/logreg/infer", json=TABLE, timeout=30)
    requests.get(f"{url}/v2/health/live?token={SECRET}", timeout=5)
    requests.post(f"{url}/v1/models/logreg:predict", json={"instances": [SECRET]}, timeout=30)
    requests.get(f"{url}/nowhere", timeout=5)

    def lines() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == ACCESS.name]

    wait_for(lambda: len(lines()) >= 4)  # logged once answered: maybe just after
    time.sleep(0.1)
    assert len(lines()) == 4  # one line a request
    infer, health, predict, missing = (line.split() for line in lines())
    assert infer[:4] == ["rest", "POST", "/v2/models/logreg/infer", "200"]
    assert health[:4] == ["rest", "GET", "/v2/health/live", "200"]  # no query string
    assert predict[:4] == ["rest", "POST", "/v1/models/logreg:predict", "400"]
    assert missing[:4] == ["rest", "GET", "/nowhere", "404"]
    for fields in (infer, health, predict, missing):
        assert fields[4].endswith("ms") and float(fields[4][:-2]) >= 0
        assert fields[6] == "client=127.0.0.1"
    assert infer[5] == predict[5] == "model=logreg"
    assert health[5] == missing[5] == "model=-"
    assert all(SECRET not in line for line in lines())


@pytest.mark.parametrize("path", ["/v2/models/logreg/infer", "/v1/models/logreg:predict"])
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (NESTED, "(nested too deeply)"),
        (b'{"inputs": ' + b"9" * 5000 + b"}", "Exceeds the limit (4300 digits)"),
    ],
    ids=["nested", "long-integer"],
)
def test_an_unparseable_body_is_a_counted_400(live_server, path, body, why):
    before = counted(live_server.url, "logreg", 400)
    answer = requests.post(f"{live_server.url}{path}", data=body, timeout=30)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error.startswith("the request body is not valid JSON (") and why in error
    assert "\n" not in error
    assert counted(live_server.url, "logreg", 400) == before + 1


@pytest.mark.parametrize("path", ["/v2/models/logreg/infer", "/v1/models/logreg:predict"])
def test_a_server_error_is_answered_and_counted(live_server, monkeypatch, path):
    def broken(name, version=None):
        raise RuntimeError("forced")

    monkeypatch.setattr(live_server.service, "model", broken)
    before = counted(live_server.url, "logreg", 500)
    answer = requests.post(f"{live_server.url}{path}", json=TABLE, timeout=30)
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal server error"}
    assert counted(live_server.url, "logreg", 500) == before + 1


def test_a_client_that_goes_away_is_counted_499_and_its_request_never_runs(tabular_artifacts):
    """A request waits 1 s in the queue for company; its client disconnects meanwhile: the
    request leaves the queue at once and no batch ever runs it."""
    with LiveServer([tabular_artifacts["logreg"]], max_batch_delay=1.0) as server:
        batcher = server.service.batchers["logreg"]
        body = requests.Request("POST", f"{server.url}/v2/models/logreg/infer", json=TABLE)
        prepared = body.prepare()
        head = f"POST {prepared.path_url} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in prepared.headers.items()) + "\r\n"
        with socket.create_connection(("127.0.0.1", server.port)) as client:
            client.sendall(head.encode() + prepared.body)
            wait_for(lambda: batcher.depth == 1)
        wait_for(lambda: batcher.depth == 0, timeout=0.5)  # withdrawn, not run after 1 s
        time.sleep(1.2)  # past the batch delay
        assert sample(server.url, 'ladder_batch_size_count{model="logreg"}') == 0
        assert counted(server.url, "logreg", 499) == 1

"""Continuous batching on a live server: concurrent requests give the text each gives alone,
a full queue answers 503 and the server serves on, and a client that disconnects frees its
slot before the others finish. The decoder's steps are held by the test where the order of
events matters (no timing)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from generation_helpers import served, tiny_generator
from serve_helpers import LiveServer

from ladder.generate.engine import Engine, EngineSettings, QueueFull
from ladder.generate.stream import SamplingParams


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 30) -> None:
    """Poll until `condition` holds (a deadline against hangs, not a timing assert)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.01)


def post(url: str, body: dict) -> requests.Response:
    return requests.post(url, json=body, timeout=60)


def test_concurrent_requests_give_what_each_gives_alone() -> None:
    prompts = ["the", "quick brown", "o", "lazy dog jumps", "fox", "the quick brown fox"]
    lengths = [5, 40, 17, 60, 3, 25]  # some pass the context of 32: the window slides
    with LiveServer([], models=[served("tiny", max_sequences=3)]) as live:
        url = f"{live.url}/v2/models/tiny/generate"
        bodies = [
            {"text_input": p, "parameters": {"max_tokens": n, "seed": i, "top_p": 0.9}}
            for i, (p, n) in enumerate(zip(prompts, lengths, strict=True))
        ]
        with ThreadPoolExecutor(len(bodies)) as pool:
            answers = list(pool.map(lambda b: post(url, b), bodies))
    generator = tiny_generator()
    for i, (prompt, n, answer) in enumerate(zip(prompts, lengths, answers, strict=True)):
        want = generator.generate(prompt, SamplingParams(max_new_tokens=n, seed=i, top_p=0.9))
        assert answer.json()["text_output"] == want


def test_a_full_queue_is_a_503_and_the_server_serves_on() -> None:
    model = served("held", held=True, max_sequences=1, max_queue=1)
    decoder, engine_of = model.generator.decoder, lambda: model.engine
    with LiveServer([], models=[model]) as live:
        url = f"{live.url}/v2/models/held/generate"
        body = {"text_input": "the", "parameters": {"max_tokens": 5, "seed": 0}}
        decoder.hold()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(post, url, body)
            wait_for(lambda: engine_of().running == 1, "the first request runs")
            second = pool.submit(post, url, body)
            wait_for(lambda: engine_of().queued == 1, "the second request waits")
            refused = post(url, body)
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "1"
            assert "queue full" in refused.json()["error"]
            stream = requests.post(f"{url}_stream", json=body, timeout=10)
            assert stream.status_code == 503
            decoder.release()
            assert first.result().status_code == 200
            assert second.result().status_code == 200
        assert post(url, body).status_code == 200
        metrics = requests.get(f"{live.url}/metrics", timeout=5).text
        assert 'ladder_rejected_requests_total{model="held",reason="queue_full"} 2.0' in metrics


def send_raw(port: int, path: str, body: dict) -> socket.socket:
    """A POST sent on a socket of its own, its answer unread: closing the socket is a
    client going away."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    )
    sock.sendall(head.encode() + data)
    return sock


@pytest.mark.parametrize("route", ["generate_stream", "generate"])
def test_a_client_that_disconnects_frees_its_slot_at_once(route: str) -> None:
    model = served("held", held=True, max_sequences=2, max_new_tokens=400)
    decoder = model.generator.decoder
    with LiveServer([], models=[model]) as live:
        engine = model.engine
        url = f"{live.url}/v2/models/held/generate"
        long = {"text_input": "the", "parameters": {"max_tokens": 400, "seed": 0}}
        decoder.hold()
        leaving = send_raw(live.port, f"/v2/models/held/{route}", long)
        wait_for(lambda: engine.running == 1, "the first request runs")
        with ThreadPoolExecutor(2) as pool:
            staying = pool.submit(post, url, long)
            wait_for(lambda: engine.queued == 1, "the second request waits")
            decoder.step()  # the first one's step ends; the second joins the batch
            wait_for(lambda: engine.running == 2, "the second request runs")
            third = pool.submit(post, url, {**long, "parameters": {"max_tokens": 3}})
            wait_for(lambda: engine.queued == 1, "the third request waits: no slot")
            leaving.close()  # the client goes away
            wait_for(lambda: engine.running == 1, "the slot is freed")
            decoder.step()  # one step: the third request takes the freed slot
            wait_for(lambda: engine.queued == 0 and engine.running == 2, "the third one runs")
            assert not staying.done()  # held: the other one is still generating
            metrics = requests.get(f"{live.url}/metrics", timeout=5).text
            assert 'ladder_sequences_running{model="held"} 2.0' in metrics
            decoder.release()
            assert third.result().status_code == 200
            answer = staying.result()
        assert answer.status_code == 200
        assert len(answer.json()["text_output"]) > 0


def test_the_engine_refuses_beyond_its_queue_and_after_close() -> None:
    generator = tiny_generator()
    engine = Engine(generator, EngineSettings(max_sequences=1, max_queue=1))  # not started
    params = SamplingParams(max_new_tokens=2)
    engine.submit([1, 2], params, lambda text, finish: None)
    with pytest.raises(QueueFull):
        engine.submit([1, 2], params, lambda text, finish: None)
    with pytest.raises(ValueError, match="prompt of 0 tokens"):
        engine.submit([], params, lambda text, finish: None)
    done = threading.Event()
    engine.start()
    engine.close()
    assert engine.join(30)
    assert engine.running == 0 and engine.queued == 0
    from ladder.generate.engine import Closed

    with pytest.raises(Closed):
        engine.submit([1], params, lambda text, finish: done.set())


def test_a_failing_model_ends_only_its_requests() -> None:
    generator = tiny_generator()
    real = generator.decoder.decode
    calls = []

    def failing(tokens, states):
        calls.append(len(tokens))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return real(tokens, states)

    generator.decoder.decode = failing
    events: list[tuple[str, str | None]] = []
    finished = threading.Event()

    def emit(text: str, finish: str | None) -> None:
        events.append((text, finish))
        if finish:
            finished.set()

    engine = Engine(generator)
    engine.start()
    try:
        engine.submit([1, 2], SamplingParams(max_new_tokens=5, seed=0), emit)
        assert finished.wait(30)
        assert events[-1][1] == "error"
        finished.clear()
        events.clear()
        engine.submit([1, 2], SamplingParams(max_new_tokens=5, seed=0), emit)
        assert finished.wait(30)
        assert events[-1][1] == "length"
    finally:
        engine.close()
        engine.join(30)

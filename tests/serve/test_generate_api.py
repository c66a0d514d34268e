"""The generate extension on a live server with a tiny GPT: generate, generate_stream (SSE),
infer with BYTES tensors, seeds, stop strings, truncation, every bad parameter (400 with one
line naming it, and the server serves on), API key, metadata and metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import requests
from generation_helpers import CONTEXT, served, tiny_generator
from serve_helpers import LiveServer

from ladder.generate.stream import SamplingParams

API_KEY = "gen-key"


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer([], models=[served("tiny", max_new_tokens=100)]) as live:
        yield live


def generate(server: LiveServer, body: dict, name: str = "tiny", **kw) -> requests.Response:
    return requests.post(f"{server.url}/v2/models/{name}/generate", json=body, timeout=30, **kw)


def sse_events(response: requests.Response) -> list[dict]:
    """The JSON data of every Server-Sent Event of a streamed answer."""
    events, data = [], []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            data.append(line[len("data: ") :])
        elif line == "" and data:
            events.append(json.loads("\n".join(data)))
            data = []
    assert not data, "an event was not ended by a blank line"
    return events


def expected(prompt: str, **options) -> str:
    """What the library's TextGenerator gives for the same prompt and parameters."""
    return tiny_generator().generate(prompt, SamplingParams(**options))


def test_generate_answers_the_text_the_library_gives(server: LiveServer) -> None:
    body = {"text_input": "the quick", "parameters": {"max_tokens": 20, "seed": 3}}
    answer = generate(server, body)
    assert answer.status_code == 200, answer.text
    want = expected("the quick", max_new_tokens=20, seed=3)
    assert answer.json() == {"model_name": "tiny", "model_version": "1", "text_output": want}
    assert generate(server, body).json()["text_output"] == want  # the same seed, the same text


def test_parameters_may_sit_beside_text_input_as_tensorrt_llm_sends_them(server) -> None:
    body = {"text_input": "fox", "max_tokens": 12, "temperature": 0.0}
    answer = generate(server, body)
    assert answer.json()["text_output"] == expected("fox", max_new_tokens=12, temperature=0.0)
    alias = {"text_input": "fox", "parameters": {"max_new_tokens": 12, "temperature": 0}}
    assert generate(server, alias).json() == answer.json()


def test_generate_stream_sends_one_event_per_chunk(server: LiveServer) -> None:
    body = {"text_input": "lazy", "parameters": {"max_tokens": 40, "seed": 1, "top_k": 5}}
    url = f"{server.url}/v2/models/tiny/generate_stream"
    with requests.post(url, json=body, stream=True, timeout=30) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response)
    assert len(events) > 1
    assert all(e["model_name"] == "tiny" and e["text_output"] for e in events)
    text = "".join(e["text_output"] for e in events)
    assert text == expected("lazy", max_new_tokens=40, seed=1, top_k=5)


def test_a_stop_string_ends_the_text_before_it(server: LiveServer) -> None:
    free = expected("the", max_new_tokens=30, seed=5)
    stop = free[6]  # a character the unstopped text holds
    body = {"text_input": "the", "parameters": {"max_tokens": 30, "seed": 5, "stop": [stop]}}
    text = generate(server, body).json()["text_output"]
    assert text == free[: free.index(stop)]
    assert text == expected("the", max_new_tokens=30, seed=5, stop=(stop,))


def test_a_long_prompt_is_refused_unless_truncation_is_asked_for(server: LiveServer) -> None:
    prompt = "the lazy dog " * 5  # 65 characters: over the context of 32
    answer = generate(server, {"text_input": prompt})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert "\n" not in error
    assert f"{len(prompt)} tokens" in error and str(CONTEXT - 1) in error
    assert "truncate" in error
    body = {"text_input": prompt, "parameters": {"truncate": True, "max_tokens": 5, "seed": 0}}
    answer = generate(server, body)
    assert answer.status_code == 200
    assert answer.json()["text_output"] == expected(prompt, max_new_tokens=5, seed=0)


@pytest.mark.parametrize(
    ("parameters", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": -3}, "max_tokens"),
        ({"max_tokens": 101}, "max_tokens"),  # over the server's cap
        ({"max_new_tokens": 0}, "max_tokens"),
        ({"max_tokens": "ten"}, "max_tokens"),
        ({"temperature": -0.5}, "temperature"),
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"seed": "x"}, "seed"),
        ({"stop": [""]}, "stop"),
        ({"truncate": "yes"}, "truncate"),
        ({"temprature": 1}, "temprature"),
    ],
)
def test_a_bad_parameter_is_a_400_naming_it(server: LiveServer, parameters, named) -> None:
    answer = generate(server, {"text_input": "the", "parameters": parameters})
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert f"parameters.{named}" in error and "\n" not in error
    assert generate(server, {"text_input": "the", "max_tokens": 2}).status_code == 200


def test_the_cap_is_named_in_the_error(server: LiveServer) -> None:
    error = generate(server, {"text_input": "the", "max_tokens": 101}).json()["error"]
    assert "from 1 to 100" in error and "--max-new-tokens" in error


@pytest.mark.parametrize(
    "body",
    [{}, {"text_input": 3}, {"text_input": ""}, {"text_input": "a", "parameters": [1]}, []],
)
def test_a_bad_body_is_a_400(server: LiveServer, body) -> None:
    answer = generate(server, body)
    assert answer.status_code == 400 and "\n" not in answer.json()["error"]


def test_bad_json_is_a_400_on_both_routes(server: LiveServer) -> None:
    for route in ("generate", "generate_stream"):
        url = f"{server.url}/v2/models/tiny/{route}"
        answer = requests.post(url, data=b"{not json", timeout=10)
        assert answer.status_code == 400


def test_a_bad_stream_request_is_a_json_400_not_a_stream(server: LiveServer) -> None:
    url = f"{server.url}/v2/models/tiny/generate_stream"
    answer = requests.post(url, json={"text_input": "a", "temperature": -1}, timeout=10)
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/json"
    assert "parameters.temperature" in answer.json()["error"]


def test_unknown_model_is_a_404(server: LiveServer) -> None:
    assert generate(server, {"text_input": "a"}, name="nope").status_code == 404


def test_infer_takes_bytes_and_answers_bytes(server: LiveServer) -> None:
    body = {
        "inputs": [
            {"name": "text_input", "datatype": "BYTES", "shape": [2], "data": ["the", "dog"]},
            {"name": "max_tokens", "datatype": "INT32", "shape": [1], "data": [8]},
            {"name": "seed", "datatype": "INT64", "shape": [2], "data": [1, 2]},
        ]
    }
    answer = requests.post(f"{server.url}/v2/models/tiny/infer", json=body, timeout=30)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    assert output["name"] == "text_output" and output["datatype"] == "BYTES"
    assert output["shape"] == [2]
    assert output["data"] == [
        expected("the", max_new_tokens=8, seed=1),
        expected("dog", max_new_tokens=8, seed=2),
    ]


def test_infer_refuses_bad_tensors(server: LiveServer) -> None:
    url = f"{server.url}/v2/models/tiny/infer"
    numbers = {"name": "text_input", "datatype": "FP32", "shape": [1], "data": [1.0]}
    top_p = {"name": "top_p", "datatype": "FP32", "shape": [1], "data": [2.0]}
    text = {"name": "text_input", "datatype": "BYTES", "shape": [1], "data": ["a"]}
    for inputs in ([numbers], [text, top_p], [{**text, "name": "prompt"}]):
        answer = requests.post(url, json={"inputs": inputs}, timeout=10)
        assert answer.status_code == 400, inputs
        assert "\n" not in answer.json()["error"]


def test_metadata_and_the_model_list(server: LiveServer) -> None:
    meta = requests.get(f"{server.url}/v2/models/tiny", timeout=5).json()
    assert meta["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "text_output", "datatype": "BYTES", "shape": [-1]}]
    assert "generate" in requests.get(f"{server.url}/v2", timeout=5).json()["extensions"]
    (schema,) = requests.get(f"{server.url}/v1/models", timeout=5).json()["models"]
    assert schema["task"] == "generation" and schema["context_length"] == CONTEXT
    assert schema["max_tokens"] == 100
    predict = requests.post(
        f"{server.url}/v1/models/tiny:predict", json={"instances": ["a"]}, timeout=5
    )
    assert predict.status_code == 400 and "/generate" in predict.json()["error"]


def test_metrics_count_tokens_and_latencies(server: LiveServer) -> None:
    generate(server, {"text_input": "the", "parameters": {"max_tokens": 6, "seed": 0}})
    text = requests.get(f"{server.url}/metrics", timeout=5).text
    for series in (
        'ladder_time_to_first_token_seconds_count{model="tiny"}',
        'ladder_inter_token_latency_seconds_count{model="tiny"}',
        'ladder_generated_tokens_total{model="tiny"}',
        'ladder_sequences_running{model="tiny"} 0.0',
        'ladder_sequences_queued{model="tiny"} 0.0',
        'ladder_inflight_requests{model="tiny"} 0.0',  # streams included, once they end
        'ladder_requests_total{code="200",model="tiny",protocol="rest"}',
    ):
        assert series in text, series
    tokens = [ln for ln in text.splitlines() if ln.startswith("ladder_generated_tokens_total")]
    assert float(tokens[0].split()[-1]) >= 6


def test_the_api_key_is_required_when_set() -> None:
    with LiveServer([], models=[served("keyed")], api_key=API_KEY) as live:
        body = {"text_input": "the", "max_tokens": 3}
        assert generate(live, body, name="keyed").status_code == 401
        url = f"{live.url}/v2/models/keyed/generate_stream"
        assert requests.post(url, json=body, timeout=10).status_code == 401
        headers = {"Authorization": f"Bearer {API_KEY}"}
        assert generate(live, body, name="keyed", headers=headers).status_code == 200


def test_grpc_model_infer_generates_with_tritonclient() -> None:
    import numpy as np
    import tritonclient.grpc as triton

    with LiveServer([], models=[served("tiny")], grpc=True) as live:
        client = triton.InferenceServerClient(f"127.0.0.1:{live.grpc_port}")
        try:
            prompt = triton.InferInput("text_input", [1], "BYTES")
            prompt.set_data_from_numpy(np.array([b"the"], dtype=object))
            tokens = triton.InferInput("max_tokens", [1], "INT32")
            tokens.set_data_from_numpy(np.array([7], dtype=np.int32))
            seed = triton.InferInput("seed", [1], "INT64")
            seed.set_data_from_numpy(np.array([5], dtype=np.int64))
            answer = client.infer("tiny", [prompt, tokens, seed]).as_numpy("text_output")
        finally:
            client.close()
    assert [t.decode() for t in answer] == [expected("the", max_new_tokens=7, seed=5)]

"""Seq2seq artifacts (the translation memory and a tiny Transformer trained on
`builtin:numbers-en-fr`) served by a live server: the generate routes take the source as
`text_input` and answer what the library's greedy decoding gives, streamed or whole; the model
list says seq2seq; a long or empty source is a 400 naming text_input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests
import yaml
from serve_helpers import LiveServer

import ladder

SOURCES = ["twelve", "forty-one", "one hundred and five"]
MAX_SOURCE = 32
TRANSFORMER = {
    "name": "transformer",
    "type": "seq2seq_transformer",
    "d_model": 16,
    "n_head": 2,
    "n_encoder_layers": 1,
    "n_decoder_layers": 1,
    "dropout": 0.0,
    "tie_embeddings": False,  # a tied head barely trained says eos at once: empty outputs
    "max_source_length": MAX_SOURCE,
    "max_target_length": 32,  # under max_tokens 40: greedy search is not cut shorter
    "max_steps": 4,
    "eval_interval": 2,
    "text": {"tokenizer": "char"},
}
MODELS = [{"name": "memory", "type": "memory"}, TRANSFORMER]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> dict[str, Path]:
    """The artifacts of both rungs, trained once (a few steps: the serving is under test)."""
    from ladder.runner.ladder import train

    tmp = tmp_path_factory.mktemp("serve_s2s")
    config = {
        "name": "s2s",
        "seed": 0,
        "data": {
            "source": "builtin:numbers-en-fr:200",
            "task": "seq2seq",
            "split": {"val": 0.1, "test": 0.1},
        },
        "models": MODELS,
        "train": {"batch_size": 16, "eval_batches": 1},
        "evaluate": {"bootstrap": 20, "beam_size": 1, "examples": 2},
    }
    path = tmp / "s2s.yaml"
    path.write_text(yaml.safe_dump(config))
    return {m["name"]: train(path, m["name"], out=tmp / "run").artifact for m in MODELS}


@pytest.fixture(scope="module")
def live(artifacts):
    with LiveServer(list(artifacts.values())) as server:
        yield server


def generate(live: LiveServer, name: str, source: str, **parameters) -> requests.Response:
    body = {"text_input": source, "parameters": {"max_tokens": 40, "temperature": 0, **parameters}}
    return requests.post(f"{live.url}/v2/models/{name}/generate", json=body, timeout=60)


def streamed(live: LiveServer, name: str, source: str) -> list[str]:
    """The text chunks of generate_stream's events."""
    body = {"text_input": source, "parameters": {"max_tokens": 40, "temperature": 0}}
    url = f"{live.url}/v2/models/{name}/generate_stream"
    with requests.post(url, json=body, stream=True, timeout=60) as answer:
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [line for line in answer.iter_lines() if line.startswith(b"data: ")]
    data = [json.loads(event[len(b"data: ") :]) for event in events]
    assert all("error" not in d and d["model_name"] == name for d in data)
    return [d["text_output"] for d in data]


@pytest.mark.slow
def test_generate_answers_the_librarys_greedy_translation(live, artifacts):
    for name, artifact in artifacts.items():
        model = ladder.load(artifact)
        outputs = []
        for source in [*SOURCES, "Forty-One"]:  # upper case: unseen in training
            answer = generate(live, name, source)
            assert answer.status_code == 200, answer.text
            want = model.generate(source, temperature=0, max_new_tokens=40)
            assert want == model.translate([source], beam_size=1)[0]
            assert answer.json() == {"model_name": name, "model_version": "1", "text_output": want}
            outputs.append(want)
        assert all(outputs), f"{name} translated a source to nothing: {outputs}"


@pytest.mark.slow
def test_the_stream_joins_to_the_same_text(live, artifacts):
    for name, artifact in artifacts.items():
        model = ladder.load(artifact)
        for source in SOURCES:
            chunks = streamed(live, name, source)
            greedy = model.generate(source, temperature=0, max_new_tokens=40)
            assert "".join(chunks) == greedy
            assert len(chunks) > 1  # chunk by chunk, not the text at the end


@pytest.mark.slow
def test_the_model_list_says_seq2seq(live):
    listed = requests.get(f"{live.url}/v1/models", timeout=10).json()["models"]
    by_name = {m["name"]: m for m in listed}
    assert set(by_name) == {"memory", "transformer"}
    for name, model_type in (("memory", "memory"), ("transformer", "seq2seq_transformer")):
        schema = by_name[name]
        assert schema["task"] == "seq2seq" and schema["model_type"] == model_type
        assert schema["fields"] == [{"name": "text_input", "numeric": False}]
    meta = requests.get(f"{live.url}/v2/models/transformer", timeout=10).json()
    assert meta["inputs"] == [{"name": "text_input", "datatype": "BYTES", "shape": [-1]}]
    assert "generate" in requests.get(f"{live.url}/v2", timeout=10).json()["extensions"]


@pytest.mark.slow
def test_a_source_too_long_is_refused_unless_truncation_is_asked(live, artifacts):
    long = "one hundred and seventy-seven " * 3
    assert len(long) > MAX_SOURCE
    refused = generate(live, "transformer", long)
    assert refused.status_code == 400
    error = refused.json()["error"]
    assert error.startswith("text_input: ") and f"at most {MAX_SOURCE}" in error
    assert "parameters.truncate: true" in error and "\n" not in error
    cut = generate(live, "transformer", long, truncate=True)
    assert cut.status_code == 200, cut.text
    model = ladder.load(artifacts["transformer"])  # the library keeps the source's start too
    assert cut.json()["text_output"] == model.generate(long, temperature=0, max_new_tokens=40)
    assert cut.json()["text_output"] == model.translate([long[:MAX_SOURCE]], beam_size=1)[0]
    # the memory reads any source whole
    assert generate(live, "memory", long).status_code == 200


@pytest.mark.slow
def test_an_empty_source_is_refused(live):
    for name in ("memory", "transformer"):
        for route in ("generate", "generate_stream"):
            answer = requests.post(
                f"{live.url}/v2/models/{name}/{route}", json={"text_input": ""}, timeout=30
            )
            assert answer.status_code == 400, (name, route)
            error = answer.json()["error"]
            assert error.startswith("text_input: the source is empty"), error
            assert "truncate" not in error  # truncation has nothing to do with it


@pytest.mark.slow
def test_infer_translates_several_sources_at_once(live, artifacts):
    body = {
        "inputs": [
            {"name": "text_input", "datatype": "BYTES", "shape": [3], "data": SOURCES},
            {"name": "max_tokens", "datatype": "INT32", "shape": [1], "data": [40]},
            {"name": "temperature", "datatype": "FP32", "shape": [1], "data": [0.0]},
        ]
    }
    answer = requests.post(f"{live.url}/v2/models/transformer/infer", json=body, timeout=60)
    assert answer.status_code == 200, answer.text
    (output,) = answer.json()["outputs"]
    model = ladder.load(artifacts["transformer"])
    assert output["data"] == model.translate(SOURCES, beam_size=1)

"""`ladder serve` of generation artifacts that `ladder train` wrote (an n-gram model and a
small trained GPT): loaded as language models, served with continuous batching, answering
what the library's `ladder.load(path).generate` answers, streamed or not; the server settings
and CLI options reach them."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
import requests
import yaml
from serve_helpers import LiveServer, free_port
from test_cli_serve import serve_command, wait_ready

import ladder
from ladder.runner.ladder import train
from ladder.serve.generation import GenerationSettings, ServedGenerator
from ladder.serve.server import ServeSettings, build_service

SENTENCES = ["the cat sat on the mat.", "a dog ran in the park.", "the bird sang a song."]
GPT = {"n_layer": 1, "n_head": 2, "n_embd": 16, "block_size": 16}
MODELS = [
    {"name": "trigram", "type": "ngram", "order": 3},
    {"name": "gpt", "type": "gpt", **GPT, "max_steps": 10, "eval_interval": 5},
]


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("serve_lm")
    (tmp / "corpus.txt").write_text("\n".join(SENTENCES[i % 3] for i in range(300)) + "\n")
    config = {
        "name": "lm",
        "seed": 0,
        "data": {"source": "corpus.txt", "task": "generation", "split": {"val": 0.1, "test": 0.2}},
        "models": MODELS,
        "train": {"batch_size": 8, "eval_batches": 2},
        "evaluate": {"bootstrap": 10, "sample_tokens": 4},
    }
    path = tmp / "lm.yaml"
    path.write_text(yaml.safe_dump(config))
    return {m["name"]: train(path, m["name"], out=tmp / "run").artifact for m in MODELS}


@pytest.mark.slow
def test_generation_artifacts_are_served_as_the_library_generates(artifacts) -> None:
    with LiveServer(list(artifacts.values())) as live:
        for name, artifact in artifacts.items():
            body = {"text_input": "the ", "parameters": {"max_tokens": 12, "seed": 2}}
            answer = requests.post(f"{live.url}/v2/models/{name}/generate", json=body, timeout=30)
            assert answer.status_code == 200, answer.text
            want = ladder.load(artifact).generate("the ", max_new_tokens=12, seed=2)
            assert answer.json()["text_output"] == want
            body = {"text_input": "the cat", "parameters": {"max_tokens": 10, "temperature": 0}}
            url = f"{live.url}/v2/models/{name}/generate_stream"
            with requests.post(url, json=body, stream=True, timeout=30) as streamed:
                assert streamed.status_code == 200
                events = [line for line in streamed.iter_lines() if line.startswith(b"data: ")]
            chunks = [json.loads(event[len(b"data: ") :])["text_output"] for event in events]
            greedy = ladder.load(artifact).generate("the cat", max_new_tokens=10, temperature=0)
            assert len(chunks) > 1 and "".join(chunks) == greedy
            schema = requests.get(f"{live.url}/v1/models", timeout=5).json()["models"]
            assert {"name": name, "task": "generation"}.items() <= _by_name(schema, name).items()


@pytest.mark.slow
def test_the_server_settings_reach_a_language_model(artifacts) -> None:
    settings = ServeSettings(
        [artifacts["trigram"]], generation=GenerationSettings(max_sequences=3, max_new_tokens=7)
    )
    service = build_service(settings)
    (model,) = service.models.values()
    assert isinstance(model, ServedGenerator)
    assert model.settings.max_new_tokens == 7 and model.settings.max_sequences == 3
    assert model.schema()["max_tokens"] == 7


@pytest.mark.slow
def test_ladder_serve_cli_serves_a_language_model(artifacts) -> None:
    port = free_port()
    options = ["--grpc-port", "0", "--max-new-tokens", "9", "--max-sequences", "2"]
    command = serve_command(artifacts["trigram"], "--port", port, *options)
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(proc, url)
        body = {"text_input": "the ", "max_tokens": 10}
        refused = requests.post(f"{url}/v2/models/trigram/generate", json=body, timeout=30)
        assert refused.status_code == 400 and "from 1 to 9" in refused.json()["error"]
        body["max_tokens"] = 9
        assert requests.post(f"{url}/v2/models/trigram/generate", json=body, timeout=30).ok
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _by_name(models: list[dict], name: str) -> dict:
    return next(m for m in models if m["name"] == name)

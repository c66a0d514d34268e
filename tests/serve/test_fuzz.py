"""Fuzzing every documented REST route with schemathesis, from the server's own OpenAPI
schema: whatever the request, the answer is never a 5xx, and every error is `{"error": ...}`.

Path parameters are steered to the served model names (and version "1") most of the time,
and tensors to real input names and protocol datatypes, so generated bodies reach the tensor
decoding and the models instead of stopping at "unknown model"."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from serve_helpers import LiveServer

from ladder.serve.tensors import DATATYPES

MODELS = ["logreg", "cnn", "words"]
INPUTS = ["size", "weight", "colour", "image", "text"]


def steer_path(generated: dict[str, Any] | None) -> st.SearchStrategy[dict[str, Any]]:
    """The generated path parameters, with a served model name and version most of the time."""
    if not isinstance(generated, dict):  # a route without path parameters
        return st.just(generated)
    names = st.sampled_from([*MODELS, generated.get("name", "x")])
    versions = st.sampled_from(["1", "1", generated.get("version", "2")])
    return st.fixed_dictionaries(
        {
            **{k: st.just(v) for k, v in generated.items()},
            **({"name": names} if "name" in generated else {}),
            **({"version": versions} if "version" in generated else {}),
        }
    )


def steer_tensor(tensor: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A generated tensor, mostly with a real input name and a protocol datatype."""
    return st.fixed_dictionaries(
        {
            **{k: st.just(v) for k, v in tensor.items()},
            "name": st.sampled_from([*INPUTS, tensor.get("name")]),
            "datatype": st.sampled_from([*DATATYPES, tensor.get("datatype")]),
        }
    )


def steer_body(body: Any) -> st.SearchStrategy[Any]:
    """An inference body whose tensors mostly name real inputs and datatypes."""
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(t, dict) for t in inputs):
        return st.just(body)
    steered = st.tuples(*(steer_tensor(t) for t in inputs))
    return steered.map(lambda tensors: {**body, "inputs": list(tensors)})


@pytest.fixture(scope="module")
def fuzz_server(tabular_artifacts, image_artifact, text_artifact) -> Iterator[LiveServer]:
    """A live server of logreg, cnn and words."""
    artifacts = [tabular_artifacts["logreg"], image_artifact, text_artifact]
    with LiveServer(artifacts) as server:
        yield server


def app_schema() -> Any:
    """The app's own OpenAPI schema (it does not depend on the models served), with the
    steering hooks. Built at import: schemathesis parametrizes the test from it."""
    from ladder.serve.app import create_app
    from ladder.serve.batcher import BatchSettings
    from ladder.serve.service import InferenceService

    app = create_app(InferenceService([], BatchSettings()), 1 << 20)
    loaded = schemathesis.openapi.from_dict(app.openapi())  # requests go to a live server
    loaded.hook("flatmap_path_parameters")(lambda _ctx, params: steer_path(params))
    loaded.hook("flatmap_body")(lambda _ctx, body: steer_body(body))
    return loaded


schema = app_schema()


def test_the_fuzzed_schema_is_the_one_served(fuzz_server):
    served = requests.get(f"{fuzz_server.url}/openapi.json", timeout=10).json()
    assert served == schema.raw_schema
    assert {"/v2/models/{name}/infer", "/v1/models/{name}:predict"} <= set(served["paths"])


@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_no_route_answers_a_server_error(case, fuzz_server):
    response = case.call(base_url=fuzz_server.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}\n"
        f"{case.as_curl_command()}"
    )
    if response.status_code >= 400:
        body = response.json()
        assert isinstance(body, dict) and isinstance(body.get("error"), str), response.text
        assert "\n" not in body["error"]


# ---------------------------------------------------------------------- cases fuzzing found


def table_body(size: float) -> dict[str, Any]:
    """A one-row logreg request."""
    return {
        "inputs": [
            {"name": "size", "datatype": "FP64", "shape": [1], "data": [size]},
            {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.5]},
            {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["red"]},
        ]
    }


@pytest.mark.parametrize(
    ("shape", "status"),
    [
        ([2**32, 2**32], 413),  # more rows than one request may hold: refused first
        ([2**64], 413),
        ([0, 2**70], 400),
    ],
)
def test_huge_shapes_are_a_client_error(fuzz_server, shape, status):
    body = table_body(1.0)
    body["inputs"][0].update(shape=shape, data=[])
    answer = requests.post(f"{fuzz_server.url}/v2/models/logreg/infer", json=body, timeout=10)
    assert answer.status_code == status, answer.text
    assert "'size'" in answer.json()["error"]


@pytest.mark.parametrize("value", [1e300, -1e39])
def test_numbers_beyond_fp32_are_a_bad_request(fuzz_server, value):
    answer = requests.post(
        f"{fuzz_server.url}/v2/models/logreg/infer", json=table_body(value), timeout=10
    )
    assert answer.status_code == 400, answer.text
    assert "'size'" in answer.json()["error"]
    answer = requests.post(
        f"{fuzz_server.url}/v1/models/logreg:predict",
        json={"instances": [{"size": value, "weight": 0.5, "colour": "red"}]},
        timeout=10,
    )
    assert answer.status_code == 400, answer.text
    assert "size" in answer.json()["error"]

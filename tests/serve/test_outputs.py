"""What a served model answers, by task. The output classes on their own, then a real server
of a tiny mlp regression (with 90 % conformal intervals, predicting with torch): metadata,
inference with the stock clients in JSON, binary and gRPC (answers equal to
`ladder.load(...)`), /v1 records, merged batches of 1-D outputs, metrics, bad requests."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from serve_helpers import LiveServer
from test_conformance import MODES, client, normalise, requested, strings, tensor
from tritonclient.utils import InferenceServerException

from ladder import load
from ladder.errors import ArtifactError
from ladder.serve.model import ServedModel
from ladder.serve.outputs import ClassificationOutputs, RegressionOutputs, task_outputs

ROWS = [
    {"size": 0.5, "weight": 0.3, "colour": "red"},
    {"size": 2.1, "weight": -1.0, "colour": "green"},
    {"size": 3.8, "weight": 1.2, "colour": "blue"},
    {"size": 1.0, "weight": 2.5, "colour": "purple"},  # a colour never seen in training
]
INTERVAL = {"level": 0.9, "radius": 2.0}
VALUE_OUTPUTS = [
    {"name": "prediction", "datatype": "FP32", "shape": [-1]},
    {"name": "lower", "datatype": "FP32", "shape": [-1]},
    {"name": "upper", "datatype": "FP32", "shape": [-1]},
]

# ---------------------------------------------------------------------- the output classes


def test_a_regression_answers_one_fp32_value_per_row_and_its_interval():
    outputs = RegressionOutputs(INTERVAL)
    assert [s.to_json() for s in outputs.specs] == VALUE_OUTPUTS
    values = outputs.of_batch(np.array([1.5, -2.25, 1e6 + 0.125]))
    assert values.dtype == np.float64 and values.shape == (3,)
    tensors = outputs.tensors(values, ["upper", "prediction"])
    assert list(tensors) == ["upper", "prediction"]
    assert all(a.dtype == np.float32 and a.shape == (3,) for a in tensors.values())
    np.testing.assert_array_equal(tensors["upper"], np.float32([3.5, -0.25, 1e6 + 2.125]))
    assert outputs.answer(values)["predictions"][2] == {
        "prediction": 1e6 + 0.125,  # /v1 answers the float64 value
        "lower": 1e6 - 1.875,
        "upper": 1e6 + 2.125,
    }
    assert outputs.empty().shape == (0,)
    assert outputs.schema() == {"task": "regression", "labels": [], "interval": {"level": 0.9}}


def test_a_regression_without_an_interval_answers_the_value_alone():
    outputs = RegressionOutputs(None)
    assert [s.to_json() for s in outputs.specs] == VALUE_OUTPUTS[:1]
    assert outputs.answer(np.array([2.0]))["predictions"] == [{"prediction": 2.0}]
    assert outputs.schema()["interval"] is None


def test_values_that_json_cannot_hold_are_null_in_v1_answers():
    """JSON has no NaN nor infinity; the v2 codecs already answer null there."""
    answer = RegressionOutputs(INTERVAL).answer(np.array([np.inf, np.nan]))
    assert answer["predictions"] == [
        {"prediction": None, "lower": None, "upper": None},
        {"prediction": None, "lower": None, "upper": None},
    ]


def test_classification_outputs_are_probabilities_and_labels():
    outputs = ClassificationOutputs([3, 7])
    assert [s.to_json() for s in outputs.specs] == [
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
        {"name": "label", "datatype": "INT64", "shape": [-1]},
    ]
    proba = outputs.of_batch(np.array([[0.25, 0.75]]))
    assert proba.dtype == np.float32
    assert outputs.tensors(proba, ["label"])["label"].tolist() == [7]
    assert outputs.answer(proba) == {
        "labels": ["3", "7"],
        "predictions": [{"label": 7, "probabilities": {"3": 0.25, "7": 0.75}}],
    }


def test_a_task_the_server_does_not_know_is_an_artifact_error():
    loaded = SimpleNamespace(task="ranking", labels=[], manifest={"name": "r"})
    with pytest.raises(ArtifactError, match="cannot serve task 'ranking'"):
        task_outputs(loaded)


# ---------------------------------------------------------------------- a served regression


@pytest.fixture(scope="module")
def served(regression_artifact) -> ServedModel:
    return ServedModel("price", regression_artifact)


@pytest.fixture(scope="module")
def loaded(regression_artifact) -> Any:
    """The regression loaded as a library user would."""
    return load(regression_artifact)


def platform(loaded: Any) -> str:
    """The protocol's platform of the backend the artifact predicts with (torch while
    regression has no ONNX export; the server takes whichever the artifact has)."""
    return "onnxruntime_onnx" if loaded.backend == "onnxruntime" else loaded.backend


def test_the_served_regression_describes_its_outputs(served, loaded):
    assert served.platform == platform(loaded)
    assert served.metadata()["outputs"] == VALUE_OUTPUTS
    schema = served.schema()
    assert schema["task"] == "regression" and schema["labels"] == []
    assert schema["interval"] == {"level": 0.9} and schema["target"] == "price"


def test_merged_requests_split_their_values_back_by_rows(served, loaded):
    """The batcher hands `predict` several requests at once; each gets its own rows back."""
    requests_ = [pd.DataFrame(ROWS[:1]), pd.DataFrame(ROWS[1:4]), pd.DataFrame(ROWS[2:3])]
    answers = served.predict(requests_)
    assert [a.shape for a in answers] == [(1,), (3,), (1,)]
    for frame, values in zip(requests_, answers, strict=True):
        np.testing.assert_allclose(values, loaded.predict(frame), rtol=1e-5)


@pytest.fixture(scope="module")
def server(regression_artifact, tabular_artifacts) -> Iterator[LiveServer]:
    """The regression beside a classifier, over REST and gRPC, merging requests that arrive
    within 50 ms (each answer waits up to 50 ms more)."""
    artifacts = [regression_artifact, tabular_artifacts["logreg"]]
    with LiveServer(artifacts, grpc=True, max_batch_delay=0.05) as live:
        yield live


@pytest.fixture
def connect(server) -> Iterator[Callable[..., Any]]:
    """connect(mode, concurrency=1): a stock client of the server, closed after the test."""
    made: list[Any] = []

    def make(mode: str, concurrency: int = 1) -> Any:
        made.append(client(server, mode, concurrency))
        return made[-1]

    yield make
    for c in made:
        c.close()


def table_tensors(mode: str, rows: list[dict[str, Any]]) -> list[Any]:
    return [
        tensor(mode, "size", np.array([r["size"] for r in rows], dtype=np.float64), "FP64"),
        tensor(mode, "weight", np.array([r["weight"] for r in rows], dtype=np.float64), "FP64"),
        tensor(mode, "colour", strings([r["colour"] for r in rows]), "BYTES"),
    ]


@pytest.mark.parametrize("mode", ["http-json", "grpc"])
def test_metadata_lists_fp32_values_and_the_interval(connect, loaded, mode):
    c = connect(mode)
    meta = normalise(c.get_model_metadata("price", **({"as_json": True} if mode == "grpc" else {})))
    assert meta["platform"] == platform(loaded)
    assert [i["name"] for i in meta["inputs"]] == ["size", "weight", "colour"]
    assert meta["outputs"] == VALUE_OUTPUTS
    assert c.is_model_ready("price")


@pytest.mark.parametrize("mode", MODES)
def test_inference_matches_the_artifact(connect, loaded, mode):
    c = connect(mode)
    outputs = [requested(mode, n) for n in ("prediction", "lower", "upper")]
    result = c.infer("price", table_tensors(mode, ROWS), outputs=outputs)
    values, lower, upper = loaded.predict_interval(ROWS)
    np.testing.assert_allclose(values, loaded.predict(ROWS))
    for name, expected in (("prediction", values), ("lower", lower), ("upper", upper)):
        got = result.as_numpy(name)
        assert got.dtype == np.float32 and got.shape == (len(ROWS),)
        np.testing.assert_allclose(got, expected, rtol=1e-5)


@pytest.mark.parametrize("mode", MODES)
def test_every_output_by_default_and_one_on_request(connect, loaded, mode):
    c = connect(mode)
    everything = c.infer("price", table_tensors(mode, ROWS[:2]))
    answer = everything.get_response(as_json=True) if mode == "grpc" else everything.get_response()
    assert [o["name"] for o in answer["outputs"]] == ["prediction", "lower", "upper"]
    only = c.infer("price", table_tensors(mode, ROWS[:2]), outputs=[requested(mode, "upper")])
    assert only.as_numpy("prediction") is None
    np.testing.assert_allclose(only.as_numpy("upper"), loaded.predict_interval(ROWS[:2])[2], 1e-5)


def test_a_request_of_no_rows_answers_empty_values(server):
    inputs = [
        {"name": "size", "datatype": "FP64", "shape": [0], "data": []},
        {"name": "weight", "datatype": "FP64", "shape": [0], "data": []},
        {"name": "colour", "datatype": "BYTES", "shape": [0], "data": []},
    ]
    answer = requests.post(
        f"{server.url}/v2/models/price/infer", json={"inputs": inputs}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert [(o["name"], o["shape"], o["data"]) for o in answer.json()["outputs"]] == [
        ("prediction", [0], []),
        ("lower", [0], []),
        ("upper", [0], []),
    ]


def test_v1_answers_a_number_and_its_interval_per_row(server, loaded):
    answer = requests.post(
        f"{server.url}/v1/models/price:predict", json={"instances": ROWS}, timeout=30
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert list(body) == ["model_name", "predictions"] and body["model_name"] == "price"
    values, lower, upper = loaded.predict_interval(ROWS)
    for row, value, low, high in zip(body["predictions"], values, lower, upper, strict=True):
        assert list(row) == ["prediction", "lower", "upper"]
        assert row["prediction"] == pytest.approx(value, rel=1e-5)
        assert (row["lower"], row["upper"]) == pytest.approx((low, high), rel=1e-5)
    models = requests.get(f"{server.url}/v1/models", timeout=5).json()["models"]
    schema = {m["name"]: m for m in models}
    assert schema["price"]["task"] == "regression" and schema["price"]["interval"]["level"] == 0.9
    assert schema["logreg"]["task"] == "classification"
    assert schema["logreg"]["labels"] == ["cat", "dog", "fox"]


def test_the_classifier_beside_it_answers_as_before(server):
    answer = requests.post(
        f"{server.url}/v1/models/logreg:predict", json={"instances": ROWS[:1]}, timeout=30
    )
    body = answer.json()
    assert list(body) == ["model_name", "labels", "predictions"]
    assert list(body["predictions"][0]) == ["label", "probabilities"]
    meta = requests.get(f"{server.url}/v2/models/logreg", timeout=5).json()
    assert [o["name"] for o in meta["outputs"]] == ["probabilities", "label"]


def sample(url: str, series: str) -> float:
    """The value of one series in the server's /metrics (0 when absent)."""
    text = requests.get(f"{url}/metrics", timeout=5).text
    found = re.findall(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
    return float(found[0]) if found else 0.0


@pytest.mark.parametrize("mode", ["http-binary", "grpc"])
def test_concurrent_requests_merge_and_get_their_own_values(server, connect, loaded, mode):
    """Requests merged into one batch (the 50 ms delay) are split back to the right callers,
    and the metrics count each request and batch."""
    protocol = "grpc" if mode == "grpc" else "rest"
    ok = f'ladder_requests_total{{code="200",model="price",protocol="{protocol}"}}'
    batches = 'ladder_batch_size_count{model="price"}'
    before = {s: sample(server.url, s) for s in (ok, batches)}
    chunks = [[ROWS[i % len(ROWS)]] * (i % 3 + 1) for i in range(12)]
    if mode == "grpc":  # a gRPC client may be shared by threads
        c = connect(mode)
        with ThreadPoolExecutor(6) as pool:
            results = list(
                pool.map(lambda rows: c.infer("price", table_tensors(mode, rows)), chunks)
            )
    else:  # the HTTP client runs concurrent requests on its own greenlets
        c = connect(mode, concurrency=6)
        pending = [c.async_infer("price", table_tensors(mode, rows)) for rows in chunks]
        results = [p.get_result() for p in pending]
    for rows, result in zip(chunks, results, strict=True):
        np.testing.assert_allclose(result.as_numpy("prediction"), loaded.predict(rows), rtol=1e-5)
    after = {s: sample(server.url, s) for s in (ok, batches)}
    assert after[ok] - before[ok] == len(chunks)
    assert 1 <= after[batches] - before[batches] < len(chunks)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"inputs": [{"name": "size", "datatype": "BYTES", "shape": [1], "data": ["big"]},
                     {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.0]},
                     {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["red"]}]},
         "input 'size': expected a numeric datatype (FP64), got BYTES"),
        ({"inputs": [{"name": "size", "datatype": "FP64", "shape": [1], "data": [1.0]}]},
         "missing input(s) 'weight', 'colour'"),
        ({"inputs": [{"name": "size", "datatype": "FP64", "shape": [1], "data": [1.0]},
                     {"name": "weight", "datatype": "FP64", "shape": [1], "data": [0.0]},
                     {"name": "colour", "datatype": "BYTES", "shape": [1], "data": ["red"]}],
          "outputs": [{"name": "probabilities"}]},
         "unknown output 'probabilities' (has prediction, lower, upper)"),
    ],
)  # fmt: skip
def test_a_bad_v2_request_is_a_400_naming_what_is_wrong(server, body, fragment):
    answer = requests.post(f"{server.url}/v2/models/price/infer", json=body, timeout=30)
    assert answer.status_code == 400
    assert fragment in answer.json()["error"]


def test_a_bad_record_is_a_400_naming_the_value(server):
    answer = requests.post(
        f"{server.url}/v1/models/price:predict",
        json={"instances": [{"size": "big", "weight": 0.0, "colour": "red"}]},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "instances[0].size: expected a number or null, got 'big'"


def test_an_unknown_output_over_grpc_is_invalid_argument(connect):
    c = connect("grpc")
    with pytest.raises(InferenceServerException) as info:
        c.infer("price", table_tensors("grpc", ROWS[:1]), outputs=[requested("grpc", "label")])
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "unknown output 'label'" in info.value.message()

"""Open Inference Protocol conformance: the stock `tritonclient.http` and `tritonclient.grpc`
clients against a real server of a classical tabular model, a CNN and a text model. Health,
metadata, inference in JSON and binary modes (answers equal to `ladder.load(...)`), errors."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import requests
import tritonclient.grpc as triton_grpc
import tritonclient.http as triton_http
from serve_helpers import LiveServer
from tritonclient.utils import InferenceServerException

from ladder import load

ROWS = [
    {"size": 0.1, "weight": 0.3, "colour": "red"},
    {"size": 2.1, "weight": -1.0, "colour": "green"},
    {"size": 4.0, "weight": 0.0, "colour": "blue"},
    {"size": 1.0, "weight": 2.5, "colour": "purple"},  # a colour never seen in training
]
TEXTS = ["good great fine", "awful poor dull", "lovely superb", "unknown words here"]
MODES = ["http-json", "http-binary", "grpc"]


@pytest.fixture(scope="module")
def server(tabular_artifacts, image_artifact, text_artifact) -> Iterator[LiveServer]:
    """logreg, cnn and words over REST and gRPC."""
    artifacts = [tabular_artifacts["logreg"], image_artifact, text_artifact]
    with LiveServer(artifacts, grpc=True) as live:
        yield live


@pytest.fixture(scope="module")
def artifacts(tabular_artifacts, image_artifact, text_artifact) -> dict[str, Any]:
    """The served models loaded as a library user would."""
    return {
        "logreg": load(tabular_artifacts["logreg"]),
        "cnn": load(image_artifact),
        "words": load(text_artifact),
    }


class HttpClient(triton_http.InferenceServerClient):
    """The stock HTTP client, closed only explicitly: its `__del__` joins a gevent pool, which
    fails when the cyclic garbage collector happens to run it on another thread."""

    def __del__(self) -> None:
        pass


def client(server: LiveServer, mode: str, concurrency: int = 1) -> Any:
    """A stock client of the mode's protocol."""
    if mode == "grpc":
        return triton_grpc.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
    return HttpClient(url=f"127.0.0.1:{server.port}", concurrency=concurrency)


@pytest.fixture
def connect(server) -> Iterator[Callable[..., Any]]:
    """connect(mode, live=server, concurrency=1): a client, closed after the test."""
    made: list[Any] = []

    def make(mode: str, live: LiveServer | None = None, concurrency: int = 1) -> Any:
        made.append(client(live or server, mode, concurrency))
        return made[-1]

    yield make
    for c in made:
        c.close()


def module(mode: str) -> Any:
    return triton_grpc if mode == "grpc" else triton_http


def tensor(mode: str, name: str, array: np.ndarray, datatype: str) -> Any:
    """An InferInput holding `array` as JSON data (http-json) or raw bytes (otherwise)."""
    item = module(mode).InferInput(name, list(array.shape), datatype)
    if mode == "grpc":
        item.set_data_from_numpy(array)
    else:
        item.set_data_from_numpy(array, binary_data=mode == "http-binary")
    return item


def requested(mode: str, name: str) -> Any:
    if mode == "grpc":
        return triton_grpc.InferRequestedOutput(name)
    return triton_http.InferRequestedOutput(name, binary_data=mode == "http-binary")


def strings(values: list[str]) -> np.ndarray:
    array = np.empty(len(values), dtype=object)
    array[:] = [v.encode() for v in values]
    return array


def table_tensors(mode: str, rows: list[dict[str, Any]]) -> list[Any]:
    return [
        tensor(mode, "size", np.array([r["size"] for r in rows], dtype=np.float64), "FP64"),
        tensor(mode, "weight", np.array([r["weight"] for r in rows], dtype=np.float64), "FP64"),
        tensor(mode, "colour", strings([r["colour"] for r in rows]), "BYTES"),
    ]


def images() -> np.ndarray:
    rng = np.random.default_rng(3)
    batch = rng.uniform(0, 1, (4, 1, 10, 10)).astype(np.float32)
    batch[0] = 0.95  # bright
    batch[1] = 0.05  # dark
    return batch


def infer_case(mode: str, name: str) -> tuple[list[Any], Any]:
    """(request tensors, the records ladder.load(...) predicts on) of a served model."""
    if name == "logreg":
        return table_tensors(mode, ROWS), ROWS
    if name == "cnn":
        batch = images()
        return [tensor(mode, "image", batch, "FP32")], batch
    return [tensor(mode, "text", strings(TEXTS), "BYTES")], TEXTS


def labels(array: np.ndarray) -> list[Any]:
    return [v.decode() if isinstance(v, bytes) else v for v in array.tolist()]


# ---------------------------------------------------------------------- health and metadata


@pytest.mark.parametrize("mode", ["http-json", "grpc"])
def test_health(connect, mode):
    c = connect(mode)
    assert c.is_server_live()
    assert c.is_server_ready()
    for name in ("logreg", "cnn", "words"):
        assert c.is_model_ready(name)
        assert c.is_model_ready(name, model_version="1")
    if mode == "grpc":  # an unknown model is an error over gRPC, a plain 404 over REST
        with pytest.raises(InferenceServerException, match="unknown model 'nope'"):
            c.is_model_ready("nope")
    else:
        assert not c.is_model_ready("nope")


@pytest.mark.parametrize("mode", ["http-json", "grpc"])
def test_server_metadata(connect, mode):
    c = connect(mode)
    meta = c.get_server_metadata(as_json=True) if mode == "grpc" else c.get_server_metadata()
    from ladder import __version__

    assert meta["name"] == "ladder" and meta["version"] == __version__
    assert "binary_tensor_data" in meta["extensions"]


def normalise(meta: dict[str, Any]) -> dict[str, Any]:
    """Model metadata with shapes as ints (gRPC's JSON spells int64 as strings)."""

    def tensors(key: str) -> list[dict[str, Any]]:
        return [
            {"name": t["name"], "datatype": t["datatype"], "shape": [int(d) for d in t["shape"]]}
            for t in meta[key]
        ]

    return {
        "name": meta["name"],
        "versions": list(meta["versions"]),
        "platform": meta["platform"],
        "inputs": tensors("inputs"),
        "outputs": tensors("outputs"),
    }


EXPECTED_META = {
    "logreg": (
        [("size", "FP64", [-1]), ("weight", "FP64", [-1]), ("colour", "BYTES", [-1])],
        [("probabilities", "FP32", [-1, 3]), ("label", "BYTES", [-1])],
    ),
    "cnn": (
        [("image", "FP32", [-1, 1, 10, 10])],
        [("probabilities", "FP32", [-1, 2]), ("label", "BYTES", [-1])],
    ),
    "words": (
        [("text", "BYTES", [-1])],
        [("probabilities", "FP32", [-1, 2]), ("label", "BYTES", [-1])],
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_META))
@pytest.mark.parametrize("mode", ["http-json", "grpc"])
def test_model_metadata(connect, mode, name):
    c = connect(mode)
    kwargs = {"as_json": True} if mode == "grpc" else {}
    meta = normalise(c.get_model_metadata(name, **kwargs))
    by_version = normalise(c.get_model_metadata(name, model_version="1", **kwargs))
    inputs, outputs = EXPECTED_META[name]
    assert meta == by_version
    assert meta["name"] == name and meta["versions"] == ["1"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": n, "datatype": d, "shape": s} for n, d, s in inputs]
    assert meta["outputs"] == [{"name": n, "datatype": d, "shape": s} for n, d, s in outputs]


# ---------------------------------------------------------------------- inference


@pytest.mark.parametrize("name", ["logreg", "cnn", "words"])
@pytest.mark.parametrize("mode", MODES)
def test_infer_matches_the_artifact(connect, artifacts, mode, name):
    inputs, records = infer_case(mode, name)
    outputs = [requested(mode, "probabilities"), requested(mode, "label")]
    c = connect(mode)
    result = c.infer(name, inputs, outputs=outputs, request_id="req-7")
    answer = result.get_response(as_json=True) if mode == "grpc" else result.get_response()
    assert answer["model_name"] == name and answer["id"] == "req-7"
    if mode != "grpc":  # the answer came back as the client asked: JSON data or raw bytes
        for output in answer["outputs"]:
            assert ("data" in output) == (mode == "http-json")
            assert ("binary_data_size" in output.get("parameters", {})) == (mode == "http-binary")
    proba = result.as_numpy("probabilities")
    assert proba.dtype == np.float32 and proba.shape == (4, len(artifacts[name].labels))
    np.testing.assert_allclose(proba, artifacts[name].predict_proba(records), atol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    assert labels(result.as_numpy("label")) == list(artifacts[name].predict(records))


@pytest.mark.parametrize("mode", MODES)
def test_all_outputs_by_default_and_one_on_request(connect, artifacts, mode):
    inputs, records = infer_case(mode, "words")
    c = connect(mode)
    everything = c.infer("words", inputs)
    only_label = c.infer("words", inputs, outputs=[requested(mode, "label")])
    assert everything.as_numpy("probabilities").shape == (4, 2)
    assert labels(everything.as_numpy("label")) == list(artifacts["words"].predict(records))
    assert only_label.as_numpy("probabilities") is None
    assert labels(only_label.as_numpy("label")) == list(artifacts["words"].predict(records))


@pytest.mark.parametrize("mode", MODES)
def test_uint8_images_and_a_version_in_the_path(connect, artifacts, mode):
    pixels = np.full((2, 1, 10, 10), 240, dtype=np.uint8)
    pixels[1] = 15
    c = connect(mode)
    result = c.infer("cnn", [tensor(mode, "image", pixels, "UINT8")], model_version="1")
    expected = artifacts["cnn"].predict_proba(pixels.astype(np.float32) / 255)
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    assert labels(result.as_numpy("label")) == list(artifacts["cnn"].predict(pixels / 255))


@pytest.mark.parametrize("mode", MODES)
def test_concurrent_requests_get_their_own_answers(connect, tabular_artifacts, artifacts, mode):
    """Requests merged into one batch (a 50 ms delay) are split back to the right callers."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [[ROWS[i % len(ROWS)]] * (i % 3 + 1) for i in range(12)]
    with LiveServer([tabular_artifacts["logreg"]], grpc=True, max_batch_delay=0.05) as live:
        if mode == "grpc":  # a gRPC client may be shared by threads
            c = connect(mode, live)
            with ThreadPoolExecutor(6) as pool:
                results = list(
                    pool.map(lambda rows: c.infer("logreg", table_tensors(mode, rows)), batches)
                )
        else:  # the HTTP client runs concurrent requests on its own greenlets
            c = connect(mode, live, concurrency=6)
            pending = [c.async_infer("logreg", table_tensors(mode, rows)) for rows in batches]
            results = [p.get_result() for p in pending]
        text = requests.get(f"{live.url}/metrics", timeout=5).text
    for rows, result in zip(batches, results, strict=True):
        expected = artifacts["logreg"].predict_proba(rows)
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected, atol=1e-5)
    count = sum(
        float(v) for v in re.findall(r'ladder_batch_size_count\{model="logreg"\} (\S+)', text)
    )
    assert 1 <= count < len(batches) + 1  # the warm-up batch plus fewer batches than requests


# ---------------------------------------------------------------------- errors


def status_of(mode: str, http: str, grpc: str) -> str:
    return grpc if mode == "grpc" else http


@pytest.mark.parametrize("mode", MODES)
def test_unknown_model_is_not_found(connect, mode):
    c = connect(mode)
    with pytest.raises(InferenceServerException) as info:
        c.infer("nope", table_tensors(mode, ROWS[:1]))
    assert info.value.status() == status_of(mode, "404", "StatusCode.NOT_FOUND")
    assert "nope" in info.value.message() and "logreg" in info.value.message()
    with pytest.raises(InferenceServerException) as info:
        c.get_model_metadata("nope")
    assert info.value.status() == status_of(mode, "404", "StatusCode.NOT_FOUND")
    with pytest.raises(InferenceServerException) as info:
        c.get_model_metadata("logreg", model_version="2")
    assert info.value.status() == status_of(mode, "404", "StatusCode.NOT_FOUND")
    assert "version" in info.value.message()


@pytest.mark.parametrize(
    ("name", "case", "fragment"),
    [
        ("logreg", "colour as FP64", "'colour'"),
        ("logreg", "size as BYTES", "'size'"),
        ("words", "text as INT32", "'text'"),
        ("cnn", "image as BYTES", "'image'"),
    ],
)
@pytest.mark.parametrize("mode", MODES)
def test_wrong_datatype_is_invalid_argument(connect, mode, name, case, fragment):
    if name == "logreg":
        inputs = table_tensors(mode, ROWS[:2])
        if case.startswith("colour"):
            inputs[2] = tensor(mode, "colour", np.array([1.0, 2.0]), "FP64")
        else:
            inputs[0] = tensor(mode, "size", strings(["1", "2"]), "BYTES")
    elif name == "words":
        inputs = [tensor(mode, "text", np.array([1, 2], dtype=np.int32), "INT32")]
    else:
        inputs = [tensor(mode, "image", strings(["x"]), "BYTES")]
    c = connect(mode)
    with pytest.raises(InferenceServerException) as info:
        c.infer(name, inputs)
    assert info.value.status() == status_of(mode, "400", "StatusCode.INVALID_ARGUMENT")
    assert fragment in info.value.message()
    assert "\n" not in info.value.message()


@pytest.mark.parametrize("mode", MODES)
def test_missing_input_and_unknown_output(connect, mode):
    c = connect(mode)
    with pytest.raises(InferenceServerException) as info:
        c.infer("logreg", table_tensors(mode, ROWS[:1])[:2])
    assert info.value.status() == status_of(mode, "400", "StatusCode.INVALID_ARGUMENT")
    assert "missing input(s) 'colour'" in info.value.message()
    inputs, _ = infer_case(mode, "words")
    with pytest.raises(InferenceServerException) as info:
        c.infer("words", inputs, outputs=[requested(mode, "logits")])
    assert info.value.status() == status_of(mode, "400", "StatusCode.INVALID_ARGUMENT")
    assert "unknown output 'logits'" in info.value.message()


@pytest.mark.parametrize("mode", MODES)
def test_missing_and_non_finite_values_are_invalid_argument(connect, mode):
    c = connect(mode)
    for value, fragment in ((np.nan, "[1]: missing"), (np.inf, "[1]: inf is not a finite")):
        rows = [ROWS[0], {**ROWS[1], "size": value}]
        with pytest.raises(InferenceServerException) as info:
            c.infer("logreg", table_tensors(mode, rows))
        assert info.value.status() == status_of(mode, "400", "StatusCode.INVALID_ARGUMENT")
        if mode == "http-json":  # the stock client writes the non-standard NaN/Infinity
            assert "is not a JSON value; send null" in info.value.message()
        else:
            assert f"input 'size'{fragment}" in info.value.message()

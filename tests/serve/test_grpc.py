"""The gRPC server against a fake InferenceService: stock tritonclient calls (raw tensors) and
typed contents over a plain channel with ladder's private-pool messages; the error paths."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from serve_helpers import LiveServer
from tritonclient.utils import InferenceServerException

from ladder.serve.access import ACCESS
from ladder.serve.grpc import authorized, encode_response, grpc_server, select_outputs
from ladder.serve.metrics import ServeMetrics
from ladder.serve.proto import SERVICE, messages
from ladder.serve.service import (
    BadRequest,
    InferOutput,
    NotFound,
    Timeout,
    TooLarge,
    Unavailable,
)

API_KEY = "s3cret-key"
LABELS = [b"cat", b"dog"]


class FakeModel:
    """A model "pets": input "x" FP32 [-1, 3]; outputs "probabilities" FP32, "label" BYTES."""

    name, version = "pets", "1"

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": [self.version],
            "platform": "onnxruntime_onnx",
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
            "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
                {"name": "label", "datatype": "BYTES", "shape": [-1]},
            ],
        }


class FakeTextModel(FakeModel):
    """A model "echo": input "text" BYTES [-1]; outputs "length" INT64, "upper" BYTES."""

    name = "echo"


@dataclass
class FakeService:
    """The InferenceService interface, with canned answers and a record of the calls."""

    live: bool = True
    ready: bool = True
    fail: Exception | None = None
    calls: list[dict[str, Any]] = field(default_factory=list)
    metrics: ServeMetrics = field(default_factory=ServeMetrics)
    models: dict[str, FakeModel] = field(
        default_factory=lambda: {"pets": FakeModel(), "echo": FakeTextModel()}
    )

    def server_metadata(self) -> dict[str, Any]:
        return {"name": "ladder", "version": "0.1.0", "extensions": ["binary_tensor_data"]}

    def model(self, name: str, version: str | None = None) -> FakeModel:
        if name not in self.models or version not in (None, "1"):
            raise NotFound(f"unknown model {name!r} (served: echo, pets)")
        return self.models[name]

    def model_ready(self, name: str, version: str | None = None) -> bool:
        self.model(name, version)
        return self.ready

    max_request_rows: int = 1000

    def check_rows(self, name: str, where: str, rows: int | None) -> None:
        if rows is not None and rows > self.max_request_rows:
            raise TooLarge(f"{where}: {rows} rows is over the limit (--max-request-rows)")

    def count(self, name: str | None, protocol: str, code: int, seconds: float) -> None:
        self.metrics.requests.labels(name or "unknown", protocol, str(code)).inc()

    def reject(self, name: str | None, reason: str) -> None:
        self.metrics.rejected.labels(name if name in self.models else "unknown", reason).inc()

    async def infer(
        self,
        name: str,
        version: str | None,
        inputs: dict[str, np.ndarray],
        outputs: list[str] | None,
        protocol: str,
        timeout: float | None = None,
    ) -> list[InferOutput]:
        self.calls.append(
            {"name": name, "inputs": inputs, "outputs": outputs, "protocol": protocol}
        )
        self.model(name, version)
        if self.fail is not None:
            raise self.fail
        if name == "echo":
            texts = inputs["text"].reshape(-1)
            answer = {
                "length": np.asarray([len(t) for t in texts], dtype=np.int64),
                "upper": np.asarray([t.upper() for t in texts], dtype=object),
            }
        else:
            x = inputs.get("x")
            if x is None or x.dtype != np.float32 or x.ndim != 2 or x.shape[1] != 3:
                raise BadRequest("input 'x': expected FP32 [-1, 3]")
            p_dog = 1 / (1 + np.exp(-x.sum(axis=1)))
            proba = np.stack([1 - p_dog, p_dog], axis=1).astype(np.float32)
            label = np.empty(len(x), dtype=object)
            label[:] = [LABELS[int(i)] for i in proba.argmax(axis=1)]
            answer = {"probabilities": proba, "label": label}
        unknown = [n for n in outputs or [] if n not in answer]
        if unknown:
            raise BadRequest(f"unknown output {unknown[0]!r}")
        return [InferOutput(n, answer[n]) for n in outputs or answer]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Servers:
    service: FakeService
    open_url: str  # no API key
    keyed_url: str  # API_KEY required
    small_url: str  # 4 KiB messages at most


@pytest.fixture(scope="module")
def servers() -> Iterator[Servers]:
    """Three servers on one fake service, in an event loop on a background thread."""
    service = FakeService()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    ports = [_free_port() for _ in range(3)]

    async def start() -> list[grpc.aio.Server]:
        started = [
            grpc_server(service, "127.0.0.1", ports[0], 4 << 20, None),
            grpc_server(service, "127.0.0.1", ports[1], 4 << 20, API_KEY),
            grpc_server(service, "127.0.0.1", ports[2], 4096, None),
        ]
        for server in started:
            await server.start()
        return started

    started = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield Servers(service, *(f"127.0.0.1:{p}" for p in ports))
    finally:

        async def stop() -> None:
            for server in started:
                await server.stop(grace=None)

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


@pytest.fixture
def service(servers: Servers) -> Iterator[FakeService]:
    """The shared fake service, reset after each test."""
    yield servers.service
    servers.service.ready, servers.service.fail = True, None
    servers.service.calls.clear()


@pytest.fixture
def client(servers: Servers) -> Iterator[triton.InferenceServerClient]:
    c = triton.InferenceServerClient(url=servers.open_url)
    yield c
    c.close()


@pytest.fixture
def channel(servers: Servers) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(servers.open_url) as ch:
        yield ch


def call(channel: grpc.Channel, method: str, request: Any, **kwargs: Any) -> Any:
    """One unary call with ladder's own message classes."""
    response_class = getattr(messages(), f"{method}Response")
    stub = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_class.FromString,
    )
    return stub(request, timeout=5, **kwargs)


def triton_input(name: str, array: np.ndarray, datatype: str) -> triton.InferInput:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


# ---------------------------------------------------------------------- tritonclient


def test_health_and_metadata_with_tritonclient(client, service):
    assert client.is_server_live() is True
    assert client.is_server_ready() is True
    assert client.is_model_ready("pets") is True
    assert client.is_model_ready("pets", "1") is True
    service.ready = False
    assert client.is_server_ready() is False
    assert client.is_model_ready("pets") is False

    meta = client.get_server_metadata(as_json=True)
    assert meta["name"] == "ladder" and meta["extensions"] == ["binary_tensor_data"]
    model = client.get_model_metadata("pets", as_json=True)
    assert model["versions"] == ["1"] and model["platform"] == "onnxruntime_onnx"
    assert model["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1", "3"]}]
    assert [o["name"] for o in model["outputs"]] == ["probabilities", "label"]


def test_infer_fp32_raw_with_tritonclient(client, service):
    x = np.array([[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]], dtype=np.float32)
    result = client.infer("pets", [triton_input("x", x, "FP32")], request_id="req-7")
    response = result.get_response()
    assert response.id == "req-7" and response.model_version == "1"
    assert len(response.raw_output_contents) == 2  # raw request -> raw answer
    proba = result.as_numpy("probabilities")
    assert proba.dtype == np.float32 and proba.shape == (2, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert result.as_numpy("label").tolist() == [b"dog", b"cat"]
    (sent,) = service.calls
    assert sent["protocol"] == "grpc" and sent["outputs"] is None
    np.testing.assert_array_equal(sent["inputs"]["x"], x)


def test_infer_bytes_and_requested_outputs_with_tritonclient(client, service):
    texts = np.array([b"hello", "héllo".encode(), b""], dtype=object)
    wanted = [triton.InferRequestedOutput("upper"), triton.InferRequestedOutput("length")]
    result = client.infer("echo", [triton_input("text", texts, "BYTES")], outputs=wanted)
    assert [o.name for o in result.get_response().outputs] == ["upper", "length"]
    assert result.as_numpy("upper").tolist() == [b"HELLO", "héllo".encode().upper(), b""]
    assert result.as_numpy("length").tolist() == [5, 6, 0]
    assert service.calls[0]["outputs"] == ["upper", "length"]
    assert service.calls[0]["inputs"]["text"].tolist() == texts.tolist()


@pytest.mark.parametrize(
    ("model", "tensor", "status", "words"),
    [
        ("nope", ("x", np.zeros((1, 3), np.float32), "FP32"), "NOT_FOUND", "unknown model"),
        ("pets", ("x", np.zeros((1, 3), np.float64), "FP64"), "INVALID_ARGUMENT", "FP32"),
        ("pets", ("x", np.zeros((1, 4), np.float32), "FP32"), "INVALID_ARGUMENT", "[-1, 3]"),
    ],
)
def test_infer_errors_with_tritonclient(client, service, model, tensor, status, words):
    with pytest.raises(InferenceServerException) as info:
        client.infer(model, [triton_input(*tensor)])
    assert info.value.status() == f"StatusCode.{status}"
    assert words in info.value.message()


def test_unknown_requested_output_is_invalid(client, service):
    x = np.zeros((1, 3), np.float32)
    with pytest.raises(InferenceServerException) as info:
        client.infer(
            "pets", [triton_input("x", x, "FP32")], outputs=[triton.InferRequestedOutput("nah")]
        )
    assert info.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "nah" in info.value.message()


@pytest.mark.parametrize(
    ("error", "status", "words"),
    [
        (Unavailable("model 'pets': queue full; retry later"), "UNAVAILABLE", "queue full"),
        (Timeout("model 'pets': no answer within 5 s"), "DEADLINE_EXCEEDED", "no answer"),
        (RuntimeError("secret detail"), "INTERNAL", "internal error in ModelInfer"),
    ],
)
def test_service_errors_map_to_status_codes(client, service, error, status, words):
    service.fail = error
    with pytest.raises(InferenceServerException) as info:
        client.infer("pets", [triton_input("x", np.zeros((1, 3), np.float32), "FP32")])
    assert info.value.status() == f"StatusCode.{status}"
    assert words in info.value.message() and "secret" not in info.value.message()


def test_a_full_queue_sends_the_retry_pushback_trailer(channel, service):
    service.fail = Unavailable("model 'pets': queue full; retry later", retry_after=2)
    with pytest.raises(grpc.RpcError) as info:
        call(
            channel, "ModelInfer", _typed_request(x=("FP32", [1, 3], {"fp32_contents": [1, 2, 3]}))
        )
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert ("grpc-retry-pushback-ms", "2000") in tuple(info.value.trailing_metadata())


def test_unknown_model_metadata_is_not_found(client):
    with pytest.raises(InferenceServerException) as info:
        client.get_model_metadata("nope")
    assert info.value.status() == "StatusCode.NOT_FOUND"


# ---------------------------------------------------------------------- API key


def test_api_key_guards_all_but_health(servers, service):
    keyed = triton.InferenceServerClient(url=servers.keyed_url)
    try:
        assert keyed.is_server_live() and keyed.is_server_ready()  # open without the key
        for headers in (None, {"authorization": "Bearer wrong"}, {"authorization": API_KEY}):
            with pytest.raises(InferenceServerException) as info:
                keyed.get_model_metadata("pets", headers=headers)
            assert info.value.status() == "StatusCode.UNAUTHENTICATED"
            with pytest.raises(InferenceServerException):
                keyed.infer("pets", [triton_input("x", np.zeros((1, 3), np.float32), "FP32")])
        good = {"authorization": f"Bearer {API_KEY}"}
        assert keyed.get_model_metadata("pets", headers=good).name == "pets"
        x = np.ones((1, 3), np.float32)
        result = keyed.infer("pets", [triton_input("x", x, "FP32")], headers=good)
        assert result.as_numpy("label").tolist() == [b"dog"]
        assert len(service.calls) == 1  # refused calls never reached the service
        refused = service.metrics.rejected.labels(model="pets", reason="unauthorized")
        assert refused._value.get() == 6  # 3 metadata + 3 infer calls
    finally:
        keyed.close()


def test_authorized_reads_bearer_metadata():
    assert authorized((("authorization", "Bearer k1"),), "k1")
    assert authorized((("authorization", "bearer k1"),), "k1")  # any case (RFC 7235)
    assert authorized((("authorization", "BEARER k1"),), "k1")
    assert authorized((("x-other", "1"), ("authorization", "Bearer k1")), "k1")
    assert not authorized((("authorization", "Bearer k1x"),), "k1")
    assert not authorized((("authorization", "Bearer k2"),), "k1")
    assert not authorized((("authorization", "k1"),), "k1")
    assert not authorized((("authorization", "Bearer ключ"),), "k1")
    assert not authorized(None, "k1")


# ---------------------------------------------------------------------- typed contents


def _typed_request(**tensors: tuple[str, list[int], dict[str, list[Any]]]) -> Any:
    msgs = messages()
    request = msgs.ModelInferRequest(model_name="pets", id="t1")
    for name, (datatype, shape, contents) in tensors.items():
        request.inputs.add(
            name=name,
            datatype=datatype,
            shape=shape,
            contents=msgs.InferTensorContents(**contents),
        )
    return request


def test_typed_contents_answer_typed(channel, service):
    request = _typed_request(x=("FP32", [2, 3], {"fp32_contents": [1, 2, 3, -1, -2, -3]}))
    request.outputs.add(name="label")
    request.outputs.add(name="probabilities")
    response = call(channel, "ModelInfer", request)
    assert response.id == "t1" and response.model_name == "pets"
    assert not response.raw_output_contents
    label, proba = response.outputs
    assert (label.name, label.datatype, list(label.shape)) == ("label", "BYTES", [2])
    assert list(label.contents.bytes_contents) == [b"dog", b"cat"]
    assert (proba.datatype, list(proba.shape)) == ("FP32", [2, 2])
    assert len(proba.contents.fp32_contents) == 4
    x = service.calls[0]["inputs"]["x"]
    assert x.dtype == np.float32 and x.tolist() == [[1, 2, 3], [-1, -2, -3]]


def test_typed_bytes_and_int_outputs(channel, service):
    request = _typed_request(text=("BYTES", [2], {"bytes_contents": [b"ab", b"xyz"]}))
    request.model_name = "echo"
    response = call(channel, "ModelInfer", request)
    length, upper = response.outputs
    assert length.datatype == "INT64" and list(length.contents.int64_contents) == [2, 3]
    assert list(upper.contents.bytes_contents) == [b"AB", b"XYZ"]


def test_typed_and_raw_metadata_calls(channel):
    msgs = messages()
    assert call(channel, "ServerLive", msgs.ServerLiveRequest()).live
    assert call(channel, "ModelReady", msgs.ModelReadyRequest(name="echo")).ready
    meta = call(channel, "ModelMetadata", msgs.ModelMetadataRequest(name="pets", version="1"))
    assert list(meta.inputs[0].shape) == [-1, 3]


@pytest.mark.parametrize(
    ("tensors", "raw", "words"),
    [
        ({"x": ("FP32", [2, 3], {"fp32_contents": [1, 2, 3]})}, None, "needs 6 elements"),
        ({"x": ("FP32", [1, 3], {"fp64_contents": [1, 2, 3]})}, None, "takes fp32_contents"),
        ({"x": ("FP32", [1, 3], {})}, None, "no data"),
        ({"x": ("FP16", [1, 3], {})}, None, "raw_input_contents"),
        ({"x": ("FP8", [1, 3], {})}, None, "unknown datatype"),
        ({"x": ("FP32", [-1, 3], {"fp32_contents": [1, 2, 3]})}, None, "shape"),
        ({"x": ("INT8", [1, 2], {"int_contents": [1, 300]})}, None, "do not fit INT8"),
        ({"x": ("FP32", [1, 3], {"fp32_contents": [1, 2, 3]})}, [b"\0" * 12], "one or the other"),
        ({"x": ("FP32", [1, 3], {})}, [b"\0" * 12, b""], "2 entries for 1 inputs"),
        ({"x": ("FP32", [1, 3], {})}, [b"\0" * 8], "needs 12 bytes"),
    ],
)
def test_bad_tensors_are_invalid_argument(channel, service, tensors, raw, words):
    request = _typed_request(**tensors)
    request.raw_input_contents.extend(raw or [])
    refused = service.metrics.requests.labels("pets", "grpc", "400")
    before = refused._value.get()
    with pytest.raises(grpc.RpcError) as info:
        call(channel, "ModelInfer", request)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in info.value.details()
    # refused before reaching the model, and counted as a failed request
    assert service.calls == []
    assert refused._value.get() == before + 1


def test_typed_int_and_bool_inputs_decode(channel, service):
    request = _typed_request(
        a=("INT8", [2], {"int_contents": [-128, 127]}),
        b=("UINT16", [1], {"uint_contents": [65535]}),
        c=("BOOL", [2], {"bool_contents": [True, False]}),
        d=("UINT64", [1], {"uint64_contents": [2**64 - 1]}),
    )
    with pytest.raises(grpc.RpcError):  # the fake model wants "x"; the decoded inputs stay
        call(channel, "ModelInfer", request)
    inputs = service.calls[0]["inputs"]
    assert inputs["a"].dtype == np.int8 and inputs["a"].tolist() == [-128, 127]
    assert inputs["b"].dtype == np.uint16 and inputs["b"].tolist() == [65535]
    assert inputs["c"].dtype == np.bool_ and inputs["c"].tolist() == [True, False]
    assert inputs["d"].dtype == np.uint64 and inputs["d"].tolist() == [2**64 - 1]


def test_message_size_limit(servers):
    request = _typed_request(x=("FP32", [2000, 3], {"fp32_contents": [0.5] * 6000}))
    with grpc.insecure_channel(servers.small_url) as small, pytest.raises(grpc.RpcError) as info:
        call(small, "ModelInfer", request)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_select_outputs_orders_and_refuses_unknown():
    a, b = InferOutput("a", np.zeros(1)), InferOutput("b", np.ones(1))
    assert select_outputs([a, b], None) == [a, b]
    assert select_outputs([a, b], ["b", "a"]) == [b, a]
    with pytest.raises(BadRequest, match="unknown output 'c'"):
        select_outputs([a, b], ["c"])


def test_fp16_outputs_force_a_raw_answer():
    half = np.array([[0.5, 1.5]], dtype=np.float16)
    response = encode_response(messages().ModelInferResponse(), [InferOutput("h", half)], raw=False)
    assert response.outputs[0].datatype == "FP16"
    assert response.raw_output_contents[0] == half.astype("<f2").tobytes()


# ---------------------------------------------------------------------- limits, log, metrics


def test_more_rows_than_a_request_may_hold_is_resource_exhausted(client, service):
    rows = service.max_request_rows + 1
    with pytest.raises(InferenceServerException) as info:
        client.infer("pets", [triton_input("x", np.zeros((rows, 3), np.float32), "FP32")])
    assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert f"input 'x': {rows} rows is over the limit" in info.value.message()
    assert "--max-request-rows" in info.value.message()
    assert service.calls == []  # refused before decoding


def test_each_call_is_one_access_line_and_each_infer_is_counted(client, service, caplog):
    caplog.set_level(logging.INFO, logger=ACCESS.name)
    ok = service.metrics.requests.labels("pets", "grpc", "200")
    before = ok._value.get()
    client.infer("pets", [triton_input("x", np.ones((1, 3), np.float32), "FP32")])
    with pytest.raises(InferenceServerException):
        client.get_model_metadata("nope")
    assert ok._value.get() == before + 1
    lines = [r.getMessage().split() for r in caplog.records if r.name == ACCESS.name]
    infer, metadata = lines
    assert infer[:5] == ["grpc", "ModelInfer", f"/{SERVICE}/ModelInfer", "OK", infer[4]]
    assert infer[4].endswith("ms") and infer[5] == "model=pets"
    assert metadata[:4] == ["grpc", "ModelMetadata", f"/{SERVICE}/ModelMetadata", "NOT_FOUND"]
    assert metadata[5] == "model=-" and metadata[6].startswith("client=")


def test_a_call_past_its_deadline_is_never_run(tabular_artifacts):
    """A client's deadline (0.3 s) passes while its request waits 1.5 s in the queue: the
    server answers DEADLINE_EXCEEDED and no batch ever runs the request."""
    with LiveServer([tabular_artifacts["logreg"]], grpc=True, max_batch_delay=1.5) as server:
        batches = server.service.metrics.batch_size.labels(model="logreg")
        with triton.InferenceServerClient(f"127.0.0.1:{server.grpc_port}") as grpc_client:
            inputs = [
                triton_input("size", np.array([1.0]), "FP64"),
                triton_input("weight", np.array([1.0]), "FP64"),
                triton_input("colour", np.array([b"red"], dtype=object), "BYTES"),
            ]
            with pytest.raises(InferenceServerException) as info:
                grpc_client.infer("logreg", inputs, client_timeout=0.3)
            assert info.value.status() == "StatusCode.DEADLINE_EXCEEDED"
            time.sleep(1.7)  # past the batch delay
        assert server.service.batchers["logreg"].depth == 0
        assert batches._sum.get() == 0  # no batch ran (the warm-up is not counted)
